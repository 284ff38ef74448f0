/* Header decoder: frames of a batch -> one column per TCP header field, in one pass.
 *
 * Why C: decoding with numpy fancy indexing, all frames at once, cost ~1 s per million frames
 * (a gather and temporaries per field, and VLAN tags, IPv6 extension headers and TCP options
 * walked one step per pass over every frame); this one pass costs 30-40 ms per million (about
 * 20 ns a frame in cache; the rest is memory traffic). It decodes exactly what that numpy code
 * did (fields, lengths, skip reasons), checked frame by frame, fuzzed frames included, before
 * that code was deleted.
 *
 * decode(data, pos, caplen, wirelen, linktype, iface, frame, ts, outputs, counts) -> segments
 *   data      the batch's bytes; frame i is data[pos[i] : pos[i] + caplen[i]]
 *   pos int64, caplen uint32, wirelen uint32, linktype uint16, iface uint16, frame int64,
 *   ts float64: per frame
 *   outputs   a tuple of N_OUT caller-preallocated writable arrays, in Packets' field order
 *             (see OUT_ITEMSIZE), each with room for one row per frame
 *   counts    int64[N_REASONS]: frames not decoded, added to by reason (see enum reason)
 * Returns how many TCP segments were written to the head of the outputs.
 *
 * Every read is checked against the frame's captured length: the padding after a chunk is not
 * relied on, and fuzzed input may only produce skip counts. A frame lying outside `data` is a
 * caller bug and raises ValueError. No numpy C API: arrays come through the buffer protocol.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* EtherTypes (IEEE registry), PPP protocol numbers (RFC 1661), IP protocol numbers (IANA) and
 * the UDP ports of the tunnels decoded (IANA), as the headers spell them. */
enum ethertype {
    ET_IPV4 = 0x0800, ET_IPV6 = 0x86DD, ET_VLAN = 0x8100, ET_QINQ = 0x88A8, ET_QINQ_OLD = 0x9100,
    ET_MPLS = 0x8847, ET_MPLS_MULTICAST = 0x8848, ET_ETHERNET = 0x6558, /* transparent Ethernet bridging */
    ET_ERSPAN_II = 0x88BE, ET_ERSPAN_III = 0x22EB
};
enum { PPP_IPV4 = 0x0021, PPP_IPV6 = 0x0057 };
enum { IP_PROTO_IPIP = 4, IP_PROTO_TCP = 6, IP_PROTO_UDP = 17, IP_PROTO_IPV6 = 41, IP_PROTO_GRE = 47 };
enum { PORT_VXLAN = 4789, PORT_GENEVE = 6081, PORT_GTP_U = 2152 };

/* Skip reasons; decode.py holds their texts, in this order (_IP_REASONS, _SHORT_REASONS, then
 * _CARRIER_REASONS). */
enum reason {
    NOT_IP, LATER_FRAGMENT, BAD_IP, NOT_TCP, NO_TCP_HEADER, BAD_TCP,
    SHORT_ETHERNET, SHORT_SLL, SHORT_SLL2, SHORT_NULL, SHORT_LOOP, UNKNOWN_LINKTYPE,
    SHORT_LINK, WLAN_NOT_DATA, WLAN_PROTECTED, LINK_CONTROL, TUNNEL_UNKNOWN, GTP_SIGNALLING, TOO_DEEP, PKTAP_UNKNOWN,
    N_REASONS
};

/* Output columns, in Packets' field order less `ctx` (decode.py numbers carriers), and their
 * item sizes. */
enum out { FRAME, TS, WHERE, IP_VERSION, SRC_HI, SRC_LO, DST_HI, DST_LO, SPORT, DPORT, SEQ, ACK,
           FLAGS, WINDOW, PAYLOAD, IP_ID, TSVAL, WSCALE, PAYLOAD_AT, PAYLOAD_CAPTURED, N_OUT };
static const Py_ssize_t OUT_ITEMSIZE[N_OUT] = {8, 8, 8, 1, 8, 8, 8, 8, 2, 2, 4, 4, 1, 2, 4, 4, 8, 1, 8, 4};

#define IPV4_MAPPED 0xFFFF00000000ull /* ::ffff:a.b.c.d: IPv4 and IPv6 share one address space */
#define SYN 0x02

static inline uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint16_t le16(const uint8_t *p) { return (uint16_t)(p[1] << 8 | p[0]); }
static inline uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}
static inline uint64_t be64(const uint8_t *p) { return (uint64_t)be32(p) << 32 | be32(p + 4); }

/* Reads an input column: C-contiguous, `itemsize`-byte items, `*n` of them (set if *n < 0). */
static int get_in(PyObject *obj, Py_buffer *b, Py_ssize_t itemsize, Py_ssize_t *n, const char *name) {
    if (PyObject_GetBuffer(obj, b, PyBUF_SIMPLE) < 0) return -1;
    if (b->len % itemsize || (*n >= 0 && b->len / itemsize != *n)) {
        PyErr_Format(PyExc_ValueError, "%s: %zd items of %zd bytes expected", name, *n < 0 ? b->len / itemsize : *n,
                     itemsize);
        return -1;
    }
    *n = b->len / itemsize;
    return 0;
}

/* Writable, C-contiguous, `itemsize`-byte items, room for at least n. */
static int get_out(PyObject *obj, Py_buffer *b, Py_ssize_t itemsize, Py_ssize_t n, const char *name) {
    if (PyObject_GetBuffer(obj, b, PyBUF_WRITABLE) < 0) return -1;
    if (b->len % itemsize || b->len / itemsize < n) {
        PyErr_Format(PyExc_ValueError, "%s: writable array of at least %zd items of %zd bytes expected",
                     name, n, itemsize);
        return -1;
    }
    return 0;
}

/* ---- where a segment was carried ------------------------------------------------------------
 * The walk below goes layer by layer from the link header to the innermost IP packet: VLAN
 * tags, MPLS stacks, PPPoE, and tunnels (IP-in-IP, GRE and ERSPAN, VXLAN, GENEVE, GTP-U). What
 * tells overlapping address spaces apart (docs/rules.md "Vocabulary") is hashed into
 * `where`: VLAN ids, and per tunnel its kind, its outer endpoints (sorted: the same both ways)
 * and its key (GRE key, VNI, ERSPAN session). MPLS labels and GTP TEIDs differ per direction,
 * so they cannot pair a connection's two directions and are left out; link layers (PPPoE
 * sessions, 802.11) are links, not address spaces. A plain frame's `where` is 0.
 */
enum layer { L_LINK, L_ETH, L_VLAN, L_MPLS, L_PPPOE, L_IPV4, L_IPV6, L_IPIP, L_GRE, L_ERSPAN, L_VXLAN, L_GENEVE,
             L_GTPU, N_LAYERS };
static const char *LAYER_NAMES[N_LAYERS] = {"", "eth", "vlan", "mpls", "pppoe", "ipv4", "ipv6", "ip", "gre",
                                            "erspan", "vxlan", "geneve", "gtpu"};
#define MAX_LAYERS 24
#define NO_ID (-1)

typedef struct { /* each layer of a path, for describe */
    int n;
    struct { uint8_t code; int64_t id; int64_t outer_at; } layer[MAX_LAYERS];
} Layers;

typedef struct {
    uint64_t where;
    Layers *layers; /* NULL: only the hash is wanted (decode) */
} Path;

static inline uint64_t mix(uint64_t h, uint64_t v) { /* splitmix64 of the running hash and v */
    uint64_t z = h ^ (v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2));
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void push(Path *p, unsigned code, int64_t id, int64_t outer_at) {
    Layers *l = p->layers;
    if (l && l->n < MAX_LAYERS) {
        l->layer[l->n].code = (uint8_t)code;
        l->layer[l->n].id = id;
        l->layer[l->n].outer_at = outer_at;
        l->n++;
    }
}

/* A tunnel: its kind, the outer IP header's two addresses in sorted order, its key. The outer
 * header at `outer_at` is one walk() decoded; its addresses are read only if they fit in the
 * `cap` captured bytes. */
static void tunnel(Path *p, const uint8_t *f, int64_t cap, unsigned code, int64_t outer_at, int64_t key) {
    uint64_t a[4] = {0, 0, 0, 0}; /* (hi, lo) of each outer address */
    const uint8_t *h = f + outer_at;
    if (outer_at < 0 || outer_at >= cap || outer_at + (h[0] >> 4 == 4 ? 20 : 40) > cap) return;
    if (h[0] >> 4 == 4) {
        a[1] = IPV4_MAPPED | be32(h + 12), a[3] = IPV4_MAPPED | be32(h + 16);
    } else {
        a[0] = be64(h + 8), a[1] = be64(h + 16), a[2] = be64(h + 24), a[3] = be64(h + 32);
    }
    int swap = a[0] > a[2] || (a[0] == a[2] && a[1] > a[3]);
    uint64_t h0 = mix(mix(p->where, 0x7E), code);
    h0 = mix(mix(h0, a[swap ? 2 : 0]), a[swap ? 3 : 1]);
    h0 = mix(mix(h0, a[swap ? 0 : 2]), a[swap ? 1 : 3]);
    p->where = mix(h0, (uint64_t)key);
    push(p, code, key, outer_at);
}

/* The link header of frame f: where the next layer starts (-1: not understood, counted), and
 * the EtherType it gives (0: none, the IP version nibble decides). Radiotap and PKTAP wrap
 * another link header. */
static int64_t link_layer(const uint8_t *f, int64_t cap, unsigned linktype, unsigned *ethertype,
                          int64_t *counts) {
    switch (linktype) {
    case 1: /* Ethernet; tags and 802.3 LLC/SNAP are walked as layers */
        if (cap < 14) { counts[SHORT_ETHERNET]++; return -1; }
        *ethertype = be16(f + 12);
        return 14;
    case 113: /* Linux cooked (SLL): protocol at 14, header 16 bytes */
        if (cap < 16) { counts[SHORT_SLL]++; return -1; }
        *ethertype = be16(f + 14);
        return 16;
    case 276: /* Linux cooked v2 (SLL2): protocol at 0, header 20 bytes */
        if (cap < 20) { counts[SHORT_SLL2]++; return -1; }
        *ethertype = be16(f);
        return 20;
    case 101: case 228: case 229: case 12: case 14: /* raw IP (12 and 14: DLT_RAW on some BSDs) */
        return 0;
    case 0: case 108: /* BSD / OpenBSD loopback: the address family repeats the version nibble */
        if (cap < 4) { counts[linktype ? SHORT_LOOP : SHORT_NULL]++; return -1; }
        return 4;
    case 9: case 50: { /* PPP, HDLC-like framing optional; protocol field compression allowed */
        int64_t at = cap >= 2 && f[0] == 0xFF && f[1] == 0x03 ? 2 : 0;
        if (at + 1 > cap) { counts[SHORT_LINK]++; return -1; }
        unsigned proto = f[at] & 1 ? f[at] : (at + 2 <= cap ? be16(f + at) : 0xFFFF);
        at += f[at] & 1 ? 1 : 2;
        if (proto == PPP_IPV4) *ethertype = ET_IPV4;
        else if (proto == PPP_IPV6) *ethertype = ET_IPV6;
        else { counts[LINK_CONTROL]++; return -1; } /* LCP, IPCP, ...: the link talking to itself */
        return at;
    }
    case 104: /* Cisco HDLC: address, control, EtherType */
        if (cap < 4) { counts[SHORT_LINK]++; return -1; }
        *ethertype = be16(f + 2);
        if (*ethertype != ET_IPV4 && *ethertype != ET_IPV6) { counts[LINK_CONTROL]++; return -1; } /* SLARP, CDP */
        return 4;
    case 242: /* IP over InfiniBand: as Linux captures it (and tcpdump and Wireshark read it), the
               * 20-byte destination and source hardware addresses in front of RFC 4391's header
               * (EtherType, 2 reserved bytes) */
        if (cap < 44) { counts[SHORT_LINK]++; return -1; }
        *ethertype = be16(f + 40);
        return 44;
    case 129: { /* Linux ARCNET: source, destination, 2-byte offset, protocol id (RFC 1201/1051) */
        if (cap < 5) { counts[SHORT_LINK]++; return -1; }
        unsigned proto = f[4];
        if (proto == 240) { *ethertype = ET_IPV4; return 5; }     /* RFC 1051 IP: no split header */
        if (proto != 212 && proto != 196) { counts[NOT_IP]++; return -1; }
        *ethertype = proto == 212 ? ET_IPV4 : ET_IPV6;             /* RFC 1201 IP, RFC 2497 IPv6 */
        if (cap < 8) { counts[SHORT_LINK]++; return -1; }
        return f[5] == 0xFF ? 12 : 8; /* split flag, sequence; an exception frame has 4 more bytes */
    }
    case 239: { /* Linux NFLOG: family, version, resource id, then TLVs; the payload TLV (9) holds
                 * the IP packet. TLV lengths are in the capturing host's byte order: little-endian
                 * unless that reads as nonsense. */
        if (cap < 4) { counts[SHORT_LINK]++; return -1; }
        for (int big = 0; big < 2; big++) {
            int64_t at = 4;
            while (at + 4 <= cap) {
                unsigned len = big ? be16(f + at) : le16(f + at), type = big ? be16(f + at + 2) : le16(f + at + 2);
                if (len < 4 || at + len > cap + 3) break;
                if ((type & 0x7FFF) == 9) return at + 4;
                at += (len + 3) & ~3u;
            }
        }
        counts[NOT_IP]++; /* no payload: a log message without the packet */
        return -1;
    }
    case 127: { /* radiotap, then 802.11 */
        if (cap < 8) { counts[SHORT_LINK]++; return -1; }
        int64_t len = le16(f + 2);
        if (len < 8 || len > cap) { counts[SHORT_LINK]++; return -1; }
        int64_t at = link_layer(f + len, cap - len, 105, ethertype, counts);
        return at < 0 ? -1 : len + at;
    }
    case 105: { /* 802.11: data frames only; LLC/SNAP gives the EtherType */
        if (cap < 2) { counts[SHORT_LINK]++; return -1; }
        unsigned fc0 = f[0], fc1 = f[1], type = fc0 >> 2 & 3, subtype = fc0 >> 4;
        if (type != 2) { counts[WLAN_NOT_DATA]++; return -1; }   /* management, control (ACKs: 10 bytes) */
        if (subtype & 4) { counts[WLAN_NOT_DATA]++; return -1; } /* null data: no payload */
        if (fc1 & 0x40) { counts[WLAN_PROTECTED]++; return -1; } /* encrypted: nothing to read */
        if (cap < 24) { counts[SHORT_LINK]++; return -1; }
        int64_t at = 24 + ((fc1 & 3) == 3 ? 6 : 0);
        if (subtype & 8) { /* QoS data: QoS control, HT control when ordered */
            if (at + 2 > cap) { counts[SHORT_LINK]++; return -1; }
            if (f[at] & 0x80) { counts[NOT_IP]++; return -1; } /* A-MSDU: several frames in one */
            at += 2 + (fc1 & 0x80 ? 4 : 0);
        }
        if (at + 8 > cap || f[at] != 0xAA || f[at + 1] != 0xAA || f[at + 2] != 0x03) { counts[NOT_IP]++; return -1; }
        *ethertype = be16(f + at + 6);
        return at + 8;
    }
    case 258: { /* Apple PKTAP: a header of its own length (little-endian), then a frame of the
                 * link type it names (pth_dlt, at 8) */
        if (cap < 12) { counts[SHORT_LINK]++; return -1; }
        int64_t len = le32(f), next = le32(f + 8);
        if (len < 8 || len > cap) { counts[SHORT_LINK]++; return -1; }
        if (next == 258 || next > 0xFFFF) { counts[PKTAP_UNKNOWN]++; return -1; }
        int64_t unknown = counts[UNKNOWN_LINKTYPE];
        int64_t at = link_layer(f + len, cap - len, (unsigned)next, ethertype, counts);
        if (counts[UNKNOWN_LINKTYPE] != unknown) { /* decode.py counts those by the file's link type */
            counts[UNKNOWN_LINKTYPE] = unknown;
            counts[PKTAP_UNKNOWN]++;
        }
        return at < 0 ? -1 : len + at;
    }
    default:
        counts[UNKNOWN_LINKTYPE]++; /* decode.py counts these per link type */
        return -1;
    }
}

/* What the walk found: the innermost IP header and its TCP segment, or a reason to skip. */
typedef struct {
    int64_t ip_at, l4, ip_end;
    uint64_t src_hi, src_lo, dst_hi, dst_lo;
    int32_t ip_id;
    int is4;
} Inner;

/* Walks frame f (captured length cap, wire length wire) to its innermost TCP segment; returns 0
 * and fills `in` and `p`, or -1 with the skip counted. */
static int walk(const uint8_t *f, int64_t cap, int64_t wire, unsigned linktype, Inner *in, Path *p,
                int64_t *counts) {
    unsigned et = 0;
    int64_t at = link_layer(f, cap, linktype, &et, counts);
    if (at < 0) return -1;
    push(p, L_LINK, linktype, -1);
    for (int depth = 0; depth < MAX_LAYERS; depth++) {
        /* EtherType dispatch: tags, labels, PPPoE, Ethernet inside a tunnel */
        if (et == ET_VLAN || et == ET_QINQ || et == ET_QINQ_OLD) {
            if (at + 4 > cap) { counts[NOT_IP]++; return -1; }
            unsigned vid = be16(f + at) & 0x0FFF;
            if (vid) p->where = mix(mix(p->where, 0x71), vid); /* VID 0: a priority tag, no VLAN */
            push(p, L_VLAN, vid, -1);
            et = be16(f + at + 2);
            at += 4;
            continue;
        }
        if (et == ET_MPLS || et == ET_MPLS_MULTICAST) { /* MPLS: labels to the bottom of the stack */
            int bottom = 0;
            for (int k = 0; k < 16 && !bottom; k++, at += 4) {
                if (at + 4 > cap) { counts[BAD_IP]++; return -1; }
                bottom = f[at + 2] & 1;
            }
            if (!bottom || at >= cap) { counts[BAD_IP]++; return -1; }
            push(p, L_MPLS, NO_ID, -1);
            et = 0; /* what follows a stack is named by nothing but its first nibble */
            if (f[at] >> 4 != 4 && f[at] >> 4 != 6) { counts[TUNNEL_UNKNOWN]++; return -1; } /* pseudowire */
            continue;
        }
        if (et == 0x8864) { /* PPPoE session: 6-byte header, then the PPP protocol */
            if (at + 8 > cap) { counts[BAD_IP]++; return -1; }
            unsigned proto = be16(f + at + 6);
            push(p, L_PPPOE, NO_ID, -1);
            at += 8;
            if (proto == PPP_IPV4) et = ET_IPV4;
            else if (proto == PPP_IPV6) et = ET_IPV6;
            else { counts[LINK_CONTROL]++; return -1; }
            continue;
        }
        if (et == ET_ETHERNET) { /* Ethernet carried in a tunnel */
            if (at + 14 > cap) { counts[BAD_IP]++; return -1; }
            push(p, L_ETH, NO_ID, -1);
            et = be16(f + at + 12);
            at += 14;
            continue;
        }
        if (et && et < 0x0600) { /* 802.3 length: LLC/SNAP may name an EtherType */
            if (at + 8 > cap || f[at] != 0xAA || f[at + 1] != 0xAA || f[at + 2] != 0x03) { counts[NOT_IP]++; return -1; }
            et = be16(f + at + 6);
            at += 8;
            continue;
        }

        /* IP: the link's EtherType, when it gave one, must agree with the version nibble. */
        unsigned version = at < cap ? f[at] >> 4 : 0;
        int is4 = version == 4 && (et == 0 || et == ET_IPV4);
        int is6 = version == 6 && (et == 0 || et == ET_IPV6);
        if (!is4 && !is6) { counts[NOT_IP]++; return -1; }
        int64_t ip_at = at, l4, ip_end;
        unsigned proto;
        if (is4) {
            if (at + 20 > cap) { counts[BAD_IP]++; return -1; }
            const uint8_t *h = f + at;
            int64_t ihl = (h[0] & 0x0F) * 4, total = be16(h + 2);
            if (be16(h + 6) & 0x1FFF) { counts[LATER_FRAGMENT]++; return -1; } /* no TCP header in it */
            /* TSO captures on the sending host carry total length 0: the frame's length is all we have. */
            if (total == 0) total = wire - at;
            if (ihl < 20 || total < ihl) { counts[BAD_IP]++; return -1; }
            proto = h[9];
            l4 = at + ihl;
            ip_end = at + total;
            in->src_hi = 0, in->dst_hi = 0;
            in->src_lo = IPV4_MAPPED | be32(h + 12);
            in->dst_lo = IPV4_MAPPED | be32(h + 16);
            in->ip_id = be16(h + 4);
        } else {
            if (at + 40 > cap) { counts[BAD_IP]++; return -1; }
            const uint8_t *h = f + at;
            int64_t plen = be16(h + 4);
            proto = h[6];
            in->src_hi = be64(h + 8), in->src_lo = be64(h + 16), in->dst_hi = be64(h + 24), in->dst_lo = be64(h + 32);
            in->ip_id = -1;
            l4 = at + 40;
            /* Extension header chain; 8 is more than any real packet carries (a longer chain
             * leaves an extension header as the protocol: "not TCP"). */
            for (int k = 0; k < 8; k++) {
                if (!(proto == 0 || proto == 43 || proto == 60 || proto == 44 || proto == 51)) break;
                if (l4 + 8 > cap) { counts[BAD_IP]++; return -1; }
                int64_t len;
                if (proto == 44) { /* fragment header: fixed 8 bytes */
                    if (be16(f + l4 + 2) & 0xFFF8) { counts[LATER_FRAGMENT]++; return -1; }
                    len = 8;
                } else if (proto == 51) { /* AH: length in 4-byte units, minus 2 */
                    len = ((int64_t)f[l4 + 1] + 2) * 4;
                } else { /* hop-by-hop, routing, destination options: 8-byte units, minus 1 */
                    len = ((int64_t)f[l4 + 1] + 1) * 8;
                }
                proto = f[l4];
                l4 += len;
            }
            ip_end = plen > 0 ? at + 40 + plen : wire; /* 0: jumbogram or TSO */
        }
        push(p, is4 ? L_IPV4 : L_IPV6, NO_ID, -1);
        if (proto == IP_PROTO_TCP) {
            in->ip_at = ip_at, in->l4 = l4, in->ip_end = ip_end, in->is4 = is4;
            return 0;
        }
        if (proto == IP_PROTO_IPIP || proto == IP_PROTO_IPV6) { /* IPv4 or IPv6 in IP (ipip, sit/6in4, ip6tnl) */
            tunnel(p, f, cap, L_IPIP, ip_at, NO_ID);
            et = 0;
            at = l4;
            continue;
        }
        if (proto == IP_PROTO_GRE) { /* GRE: checksum, key and sequence number when their flags say */
            if (l4 + 4 > cap) { counts[BAD_IP]++; return -1; }
            unsigned flags = be16(f + l4), gproto = be16(f + l4 + 2);
            if (flags & 0x0007) { counts[TUNNEL_UNKNOWN]++; return -1; } /* version 1: PPTP's PPP */
            int64_t g = l4 + 4 + (flags & 0x8000 ? 4 : 0);
            int64_t key = NO_ID;
            if (flags & 0x2000) {
                if (g + 4 > cap) { counts[BAD_IP]++; return -1; }
                key = be32(f + g);
                g += 4;
            }
            g += flags & 0x1000 ? 4 : 0;
            if (gproto != ET_ERSPAN_II && gproto != ET_ERSPAN_III) tunnel(p, f, cap, L_GRE, ip_at, key);
            else push(p, L_GRE, NO_ID, -1); /* the tunnel is the ERSPAN session below */
            if (gproto == ET_ERSPAN_II || gproto == ET_ERSPAN_III) { /* ERSPAN: II (sequenced) or I; III */
                int64_t hdr = gproto == ET_ERSPAN_III ? 12 : (flags & 0x1000 ? 8 : 0);
                if (g + hdr > cap) { counts[BAD_IP]++; return -1; }
                int64_t session = hdr ? (be16(f + g + 2) & 0x03FF) : NO_ID;
                if (gproto == ET_ERSPAN_III && g + 12 <= cap && (f[g + 11] & 1)) hdr += 8; /* platform subheader */
                tunnel(p, f, cap, L_ERSPAN, ip_at, session);
                gproto = ET_ETHERNET;
                g += hdr;
            }
            et = gproto;
            at = g;
            if (et != ET_IPV4 && et != ET_IPV6 && et != ET_ETHERNET && et != ET_MPLS && et != ET_MPLS_MULTICAST) {
                counts[TUNNEL_UNKNOWN]++;
                return -1;
            }
            continue;
        }
        if (proto == IP_PROTO_UDP && l4 + 8 <= cap) { /* UDP to a tunnel's port */
            unsigned sport = be16(f + l4), dport = be16(f + l4 + 2);
            int64_t u = l4 + 8;
            if (dport == PORT_VXLAN || (sport == PORT_VXLAN && dport != PORT_GENEVE && dport != PORT_GTP_U)) { /* VXLAN: VNI, then Ethernet */
                if (u + 8 > cap) { counts[BAD_IP]++; return -1; }
                tunnel(p, f, cap, L_VXLAN, ip_at, f[u] & 0x08 ? (int64_t)(be32(f + u + 4) >> 8) : NO_ID);
                et = ET_ETHERNET;
                at = u + 8;
                continue;
            }
            if (dport == PORT_GENEVE || (sport == PORT_GENEVE && dport != PORT_GTP_U)) { /* GENEVE: options, protocol, VNI */
                if (u + 8 > cap) { counts[BAD_IP]++; return -1; }
                tunnel(p, f, cap, L_GENEVE, ip_at, (int64_t)(be32(f + u + 4) >> 8));
                et = be16(f + u + 2);
                at = u + 8 + (f[u] & 0x3F) * 4;
                if (et != ET_IPV4 && et != ET_IPV6 && et != ET_ETHERNET) { counts[TUNNEL_UNKNOWN]++; return -1; }
                continue;
            }
            if (dport == PORT_GTP_U || sport == PORT_GTP_U) { /* GTP-U: G-PDUs carry IP; extension headers chain */
                if (u + 8 > cap) { counts[BAD_IP]++; return -1; }
                unsigned gflags = f[u];
                if (gflags >> 5 != 1 || !(gflags & 0x10)) { counts[TUNNEL_UNKNOWN]++; return -1; }
                if (f[u + 1] != 0xFF) { counts[GTP_SIGNALLING]++; return -1; } /* echo, error, end marker */
                int64_t g = u + 8;
                if (gflags & 0x07) {
                    if (g + 4 > cap) { counts[BAD_IP]++; return -1; }
                    unsigned next = f[g + 3];
                    g += 4;
                    for (int k = 0; next && k < 8; k++) {
                        if (g + 1 > cap || f[g] == 0) { counts[BAD_IP]++; return -1; }
                        int64_t len = (int64_t)f[g] * 4;
                        if (g + len > cap) { counts[BAD_IP]++; return -1; }
                        next = f[g + len - 1];
                        g += len;
                    }
                    if (next) { counts[BAD_IP]++; return -1; }
                }
                tunnel(p, f, cap, L_GTPU, ip_at, NO_ID); /* TEIDs differ per direction: not identity */
                et = 0;
                at = g;
                continue;
            }
        }
        counts[NOT_TCP]++;
        return -1;
    }
    counts[TOO_DEEP]++;
    return -1;
}

static PyObject *decode(PyObject *self, PyObject *args) {
    PyObject *o_data, *o_pos, *o_cap, *o_wire, *o_lt, *o_iface, *o_frame, *o_ts, *outputs, *o_counts;
    if (!PyArg_ParseTuple(args, "OOOOOOOOO!O", &o_data, &o_pos, &o_cap, &o_wire, &o_lt, &o_iface, &o_frame, &o_ts,
                          &PyTuple_Type, &outputs, &o_counts))
        return NULL;
    if (PyTuple_GET_SIZE(outputs) != N_OUT)
        return PyErr_Format(PyExc_ValueError, "outputs: %d arrays expected", (int)N_OUT);
    Py_buffer data = {0}, in[7] = {{0}}, out[N_OUT] = {{0}}, cnt = {0};
    Py_ssize_t n = -1, nr = N_REASONS, segments = -1;
    if (PyObject_GetBuffer(o_data, &data, PyBUF_SIMPLE) < 0 || get_in(o_pos, &in[0], 8, &n, "pos") ||
        get_in(o_cap, &in[1], 4, &n, "caplen") || get_in(o_wire, &in[2], 4, &n, "wirelen") ||
        get_in(o_lt, &in[3], 2, &n, "linktype") || get_in(o_frame, &in[4], 8, &n, "frame") ||
        get_in(o_ts, &in[5], 8, &n, "ts") || get_in(o_iface, &in[6], 2, &n, "iface") || get_in(o_counts, &cnt, 8, &nr, "counts"))
        goto done;
    if (cnt.readonly) { PyErr_SetString(PyExc_ValueError, "counts: writable array expected"); goto done; }
    for (int k = 0; k < N_OUT; k++)
        if (get_out(PyTuple_GET_ITEM(outputs, k), &out[k], OUT_ITEMSIZE[k], n, "outputs")) goto done;

    const uint8_t *d = data.buf;
    const int64_t *pos = in[0].buf, *frame = in[4].buf;
    const uint32_t *caplen = in[1].buf, *wirelen = in[2].buf;
    const uint16_t *lt = in[3].buf, *iface = in[6].buf;
    const double *ts = in[5].buf;
    int64_t *counts = cnt.buf;
    int64_t *o_fr = out[FRAME].buf, *o_tsval = out[TSVAL].buf, *o_pat = out[PAYLOAD_AT].buf;
    double *o_t = out[TS].buf;
    uint64_t *o_where = out[WHERE].buf;
    uint32_t *o_seq = out[SEQ].buf, *o_ack = out[ACK].buf;
    uint64_t *o_sh = out[SRC_HI].buf, *o_sl = out[SRC_LO].buf, *o_dh = out[DST_HI].buf, *o_dl = out[DST_LO].buf;
    uint16_t *o_sp = out[SPORT].buf, *o_dp = out[DPORT].buf, *o_win = out[WINDOW].buf;
    uint8_t *o_ver = out[IP_VERSION].buf, *o_fl = out[FLAGS].buf;
    int32_t *o_pl = out[PAYLOAD].buf, *o_id = out[IP_ID].buf, *o_pcap = out[PAYLOAD_CAPTURED].buf;
    int8_t *o_ws = out[WSCALE].buf;

    Py_ssize_t k = 0, outside = -1;
    Py_BEGIN_ALLOW_THREADS /* pure C: other threads run meanwhile */
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t cap = caplen[i]; /* all offsets below are relative to the frame's first byte */
        if (pos[i] < 0 || pos[i] > data.len || cap > data.len - pos[i]) {
            outside = i;
            break;
        }
        const uint8_t *f = d + pos[i];
        Path path = {iface[i] ? mix(0x1F, iface[i]) : 0, NULL}; /* another interface: another point */
        Inner in;
        if (walk(f, cap, wirelen[i], lt[i], &in, &path, counts) < 0) continue;
        int64_t l4 = in.l4, ip_end = in.ip_end;
        int is4 = in.is4;
        if (l4 + 20 > cap) { counts[NO_TCP_HEADER]++; continue; }

        const uint8_t *t = f + l4;
        int64_t thl = (t[12] >> 4) * 4, payload = ip_end - l4 - thl;
        if (thl < 20 || payload < 0) { counts[BAD_TCP]++; continue; }
        /* Only an IP length of 0 (TSO) makes the payload the frame's original length, which the
         * readers keep under 16 MiB (read.FrameChecks); a batch made elsewhere may not, and a
         * payload that does not fit the column is malformed to every decoder alike. */
        if (payload > INT32_MAX) { counts[BAD_IP]++; continue; }
        uint8_t flags = t[13];

        /* Options: TSval (kind 8, length 10) and window scale (kind 3, length 3); options cut
         * by the snaplen keep what could be read. Each step takes at least one of the <= 40
         * option bytes, so the walk ends. */
        int64_t tsval = -1;
        int wscale = -1;
        int64_t a = l4 + 20, stop = l4 + thl < cap ? l4 + thl : cap;
        while (a < stop) {
            unsigned kind = f[a];
            if (kind == 0) break;             /* end of option list */
            if (kind == 1) { a++; continue; } /* no-op */
            if (a + 1 >= stop) break;         /* its length byte is not there */
            unsigned len = f[a + 1];
            if (len < 2 || a + len > stop) break;
            if (kind == 8 && len == 10) tsval = be32(f + a + 2);
            if (kind == 3 && len == 3) wscale = f[a + 2] < 14 ? f[a + 2] : 14; /* RFC 7323 §2.3 */
            a += len;
        }
        if (!(flags & SYN)) wscale = -1; /* only a SYN's window scale counts (RFC 7323 §2.2) */

        o_fr[k] = frame[i];
        o_t[k] = ts[i];
        o_where[k] = path.where;
        o_ver[k] = is4 ? 4 : 6;
        o_sh[k] = in.src_hi, o_sl[k] = in.src_lo, o_dh[k] = in.dst_hi, o_dl[k] = in.dst_lo;
        o_sp[k] = be16(t), o_dp[k] = be16(t + 2);
        o_seq[k] = be32(t + 4), o_ack[k] = be32(t + 8);
        o_fl[k] = flags;
        o_win[k] = be16(t + 14);
        o_pl[k] = (int32_t)payload;
        o_id[k] = in.ip_id;
        o_tsval[k] = tsval;
        o_ws[k] = (int8_t)wscale;
        o_pat[k] = pos[i] + l4 + thl;
        /* what the snaplen left of the payload: the flow table copies the first bytes */
        int64_t got = cap - l4 - thl;
        o_pcap[k] = (int32_t)(got < 0 ? 0 : got < payload ? got : payload);
        k++;
    }
    Py_END_ALLOW_THREADS
    if (outside >= 0) {
        PyErr_Format(PyExc_ValueError, "frame %zd lies outside the data", outside);
        goto done;
    }
    segments = k;

done:
    if (data.obj) PyBuffer_Release(&data);
    for (int j = 0; j < 7; j++)
        if (in[j].obj) PyBuffer_Release(&in[j]);
    for (int j = 0; j < N_OUT; j++)
        if (out[j].obj) PyBuffer_Release(&out[j]);
    if (cnt.obj) PyBuffer_Release(&cnt);
    return segments < 0 ? NULL : PyLong_FromSsize_t(segments);
}

/* describe(frame, linktype) -> [(layer, id, outer_ends)] along the path `walk` takes through one
 * frame: layer names ("link", "eth", "vlan", "mpls", "pppoe", "ipv4", "ipv6", "ip", "gre",
 * "erspan", "vxlan", "geneve", "gtpu"), the layer's id (the link type, VLAN id, GRE key, VNI,
 * ERSPAN session; None without one) and, for tunnels, the outer IP header's source and
 * destination as 16-byte IPv6 (IPv4-mapped) addresses; else None. Empty when the walk fails. */
static PyObject *describe(PyObject *self, PyObject *args) {
    Py_buffer frame;
    unsigned linktype;
    if (!PyArg_ParseTuple(args, "y*I", &frame, &linktype)) return NULL;
    Layers layers = {0};
    Path path = {0, &layers};
    Inner in;
    int64_t counts[N_REASONS] = {0};
    int ok = walk(frame.buf, frame.len, frame.len, linktype, &in, &path, counts) == 0;
    PyObject *out = PyList_New(0);
    for (int k = 0; ok && out && k < layers.n; k++) {
        const uint8_t *f = frame.buf;
        PyObject *id = layers.layer[k].id == NO_ID ? Py_NewRef(Py_None) : PyLong_FromLongLong(layers.layer[k].id);
        PyObject *ends = Py_NewRef(Py_None);
        int64_t o = layers.layer[k].outer_at;
        if (o >= 0 && o < frame.len && o + (f[o] >> 4 == 4 ? 20 : 40) <= frame.len) { /* the outer header's addresses */
            uint8_t a[16] = {0}, b[16] = {0};
            if (f[o] >> 4 == 4) {
                a[10] = a[11] = b[10] = b[11] = 0xFF;
                memcpy(a + 12, f + o + 12, 4), memcpy(b + 12, f + o + 16, 4);
            } else {
                memcpy(a, f + o + 8, 16), memcpy(b, f + o + 24, 16);
            }
            Py_DECREF(ends);
            ends = Py_BuildValue("(y#y#)", a, (Py_ssize_t)16, b, (Py_ssize_t)16);
        }
        PyObject *item = id && ends ? Py_BuildValue("(sOO)", LAYER_NAMES[layers.layer[k].code], id, ends) : NULL;
        Py_XDECREF(id);
        Py_XDECREF(ends);
        if (!item || PyList_Append(out, item) < 0) Py_CLEAR(out);
        Py_XDECREF(item);
    }
    PyBuffer_Release(&frame);
    return out;
}

/* locate(frame, linktype, wirelen) -> (ip_at, reason): where the innermost IP header carrying
 * TCP starts (-1 if the walk found none) and, then, the skip reason the walk counted (its index
 * in enum reason; -1 when found). For other dissectors, to start where theirs stop. */
static PyObject *locate(PyObject *self, PyObject *args) {
    Py_buffer frame;
    unsigned linktype;
    long long wire;
    if (!PyArg_ParseTuple(args, "y*IL", &frame, &linktype, &wire)) return NULL;
    Path path = {0, NULL};
    Inner in;
    int64_t counts[N_REASONS] = {0};
    int ok = walk(frame.buf, frame.len, wire, linktype, &in, &path, counts) == 0;
    PyBuffer_Release(&frame);
    int reason = -1;
    for (int k = 0; !ok && k < N_REASONS; k++)
        if (counts[k]) reason = k;
    return Py_BuildValue("(Li)", ok ? (long long)in.ip_at : -1LL, reason);
}

static PyMethodDef methods[] = {
    {"decode", decode, METH_VARARGS, "Decode a frame batch into TCP header columns; see the module comment."},
    {"describe", describe, METH_VARARGS, "The layers one frame is carried in; see describe's comment."},
    {"locate", locate, METH_VARARGS, "Where one frame's innermost IP header is; see locate's comment."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_decode", "frame batch -> TCP header columns", -1,
                                    methods};

PyMODINIT_FUNC PyInit__decode(void) {
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddIntConstant(m, "N_REASONS", N_REASONS) < 0) Py_CLEAR(m);
    return m;
}

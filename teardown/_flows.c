/* The flow table: TCP segments, in capture order -> one record of facts per incarnation.
 *
 * Why C: every fact the verdicts need (first SYN, FIN and its sequence number, the ACK of the
 * peer's FIN, the RST and the receiver state it met, unwrapped sequence numbers...) is a
 * running value along each connection. Keeping them per connection in a hash table costs one
 * pass of ~100 ns per segment and memory for the connections alive only; the same facts in
 * numpy needed a sort of every segment and dozens of passes (7 s per million segments).
 *
 * Nothing here is a verdict. Each incarnation's record holds raw facts per canonical
 * direction (0: sent by endpoint A, the smaller (address, port); 1: sent by B); roles and all
 * verdicts are decided in verdicts.py from the records. Facts that depend on "what the
 * receiver had seen" (an RST's facts: RstFact) are taken at the moment the segment passes,
 * which is the only moment they are known. Every fact is a function of the segments so far,
 * never of where a chunk ended: feeding a capture in any pieces gives the same records.
 *
 * Memory follows the incarnations held, so the record held (Inc) is kept small: what is rare
 * lives outside it (the first payload bytes, the gaps of capture loss: blocks taken when
 * needed), its tuple's addresses live in the tuple, and a failed connection attempt that went
 * quiet is frozen into a few words (freeze). Records are handed out in another shape, Row:
 * what verdicts.py reads, in a layout numpy reads through the field tables below (flows.py),
 * so the two can never disagree.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NONE (-(INT64_C(1) << 62)) /* "not seen": below any unwrapped sequence number */
#define HEAD_BYTES 256             /* payload kept from the start of each direction */
#define HOLES 3 /* gaps in a direction's sequence space tracked exactly; more at once are only counted */
#define FIN 0x01
#define SYN 0x02
#define RST 0x04
#define ACK 0x10
/* How long after a SYN sent once its first retry comes, in the stack that waits longest: 3 s
 * (Windows' initial RTO; Linux and macOS wait 1 s, RFC 6298 §2.1). */
#define FIRST_RETRY_S 3.0

/* Sequence numbers [lo, hi) of a direction that the capture skipped: a segment came from beyond
 * them. `before_frame` reached up to lo, `after_frame` started at hi (frames around the gap). */
typedef struct { int64_t lo, hi, before_frame, after_frame; } Hole;

/* Capture loss (docs/rules.md "Honesty about the capture point"): how many gaps in a direction's
 * sequence space are followed (holes), and beyond HOLES gaps at once their bytes (spill),
 * conservatively lowered by later segments landing in their span [spill_lo_u, spill_hi_u). A
 * block of Table.gaps, taken at a direction's first gap: most directions never have one. */
typedef struct {
    int64_t n_holes, spill_bytes, spill_lo_u, spill_hi_u;
    Hole holes[HOLES];
} Gaps;

/* What the capture shows of an RST from S to R at the moment it passes, against the state both
 * directions had reached before it: facts, one bit each (docs/rules.md "RST classes"). Its class
 * is decided from them in verdicts.py, which reads these bits by name (flows.RstFact). */
enum RstFact {
    RST_SENDER_SEEN = 1, /* S had sent a segment other than an RST: S's next sequence number is known */
    RST_ACK_KNOWN = 2,   /* R had sent an ACK: what R expects next (its ACK) and its window are known */
    RST_ANSWERS_ACK = 4, /* the RST's sequence number is R's latest acknowledgment number */
    RST_ZERO_ACK = 8,    /* sequence number 0 with the ACK bit: how a closed port answers a segment
                          * without ACK (RFC 9293 §3.5.2) */
    RST_EXACT = 16,      /* the sequence number is exactly what R expects next: S's next, or R's ACK */
    RST_IN_WINDOW = 32,  /* beyond R's ACK and inside R's window (scaled when both SYNs agreed to) */
};
enum { HAS_SEQ = 1, HAS_ACK = 2, SYN_TSVAL = 4, LAST_TSVAL = 8 }; /* Dir.known: which u32 values hold one */

/* What one direction sent, as held while its incarnation is in the table. Frames, times and
 * unwrapped sequence numbers are 64-bit: frame numbers pass 2^32 in a live run of a day at
 * 50,000 packets/s, and a connection can live that long. Raw 32-bit values are 32-bit, their
 * "none" a bit of `known`; flags, classes and small counts a byte. */
typedef struct {
    int64_t packets, bytes, nonrst_packets;
    int64_t first_frame, last_frame;
    double first_ts, last_ts;
    /* first segment with SYN: the handshake */
    int64_t syn_frame;
    double syn_ts;
    /* pure SYNs with the first SYN's ISN (1: sent once; more: retransmitted, so unanswered) */
    int64_t syn_copies;
    /* first segment (not an RST) that acknowledges something (ack != 0) or carries data after
     * the SYN: a SYN followed by one was answered, whether or not the capture shows the answer */
    int64_t acking_frame;
    /* the acknowledgment number (unwrapped) of the first FIN: an ACK above it afterwards
     * acknowledges something the peer sent after this FIN (its FIN, when it is unseen) */
    int64_t fin_ack_u;
    /* first pure ACK after the peer's SYN: the handshake's third segment when sent by the client */
    int64_t cut_frame;
    /* first FIN, its sequence number (unwrapped), copies with that sequence number */
    int64_t fin_frame, fin_seq_u, fin_copies;
    double fin_ts, last_fin_ts;
    /* first segment acknowledging the peer's FIN */
    int64_t ack_of_fin_frame;
    double ack_of_fin_ts;
    /* first RST, and first RST after each direction's handshake cut (index: that direction)
     * that its receiver would not ignore, else the first ignored one (rst_ignored), with its
     * facts (RstFact) */
    int64_t rst_frame;
    int64_t rst_cut_frame[2];
    double rst_cut_ts[2];
    /* first RST from this direction carrying this direction's FIN + 1, here or in the next
     * incarnation, at or after the peer's TIME_WAIT began: an assassination candidate */
    int64_t kill_frame;
    double kill_ts;
    int64_t nxt_u, max_ack_u, max_ack_frame;
    double max_ack_ts;
    /* what the capture showed of this direction's sequence space, RSTs' sequence numbers
     * included, and the frame that reached it (capture loss; the gaps below it: `gaps`) */
    int64_t gap_nxt_u, gap_nxt_frame;
    int64_t data_after_peer_fin_frame;
    double data_after_peer_fin_ts;
    /* unwrapping references: the last non-RST segment's raw and unwrapped numbers */
    int64_t seq_u, ack_u;
    int64_t head_start_u;
    uint32_t first_seq; /* raw: copies of a connection at two points share it (copies.py) */
    uint32_t syn_seq, syn_tsval, last_tsval, seq_raw, ack_raw;
    uint32_t head; /* block of Table.heads holding the first payload bytes (head_len of them), 0: none */
    uint32_t gaps; /* block of Table.gaps, 0: no gap seen */
    uint16_t last_window, head_len;
    uint8_t known, first_flags, syn_has_ack, new_data_after_fin, resent_after_fin;
    int8_t syn_wscale;
    uint8_t rst_cut_facts[2];
} Dir;

/* One incarnation, as held. Its tuple's addresses and ports are the tuple's (Tuple). */
typedef struct {
    int64_t index_in_tuple, pure_syn_frame, synack_frame;
    int64_t port_peers_a, port_peers_b; /* distinct tuples seen so far with each port: roles */
    int64_t next;                       /* next incarnation of the tuple in the pool, -1 */
    uint8_t ip_version, closers_seen;
    uint8_t context;                    /* handed out only to judge its neighbours (retire) */
    int8_t pure_syn_dir, synack_dir;
    Dir d[2];
} Inc;

#define INC_WORDS (sizeof(Inc) / sizeof(uint64_t))
#define MAP_WORDS ((INC_WORDS + 63) / 64)

/* The incarnations of a quiet tuple, frozen (see freeze): per incarnation, a bitmap of the
 * 64-bit words of its Inc that differ from a blank one, then those words, each as a varint of
 * its difference to the one before (a lone SYN's frames, times and counts repeat). */
typedef struct {
    uint32_t n_incs, n_bytes;
    uint8_t b[];
} Frozen;

typedef struct {
    uint64_t a_hi, a_lo, b_hi, b_lo, hash;
    uint32_t ctx;
    uint16_t a_port, b_port;
    int32_t first, cur, prev; /* incarnations in the pool, -1 */
    int32_t kept; /* copy of the last incarnation handed out early: its successor's context */
    int64_t uid, n_incs;
    int64_t peek_from; /* when touched: the first index_in_tuple the segments since may change */
    double last_ts;
    Frozen *frozen;    /* its incarnations, when frozen (first, cur, prev are -1 then) */
    uint8_t live;
    uint8_t touched;      /* in Table.touched since the last peek (live) */
    uint8_t toward_noted; /* noted in Table.toward: bit d a segment toward endpoint d, bit 2+d an
                           * acknowledging segment from endpoint d */
    uint8_t waiting;      /* in Table.waiting (see freeze_quiet) */
} Tuple;

/* An address segments were sent to (from any address: pair 0), or a host pair (pair 1: from
 * address `from_*` to address `hi/lo`). */
typedef struct {
    uint64_t hi, lo, from_hi, from_lo, key; /* key: hash of the rest | 1; 0 marks an empty slot */
    uint32_t ctx, pair;
    double first_ts;  /* first segment toward it */
    double acking_ts; /* pairs: first of them acknowledging something (not an RST, ack != 0) */
} Addr;

/* A tuple that began an attempt with a pure SYN, to look at again `at` (capture time). */
typedef struct {
    double at;
    int64_t tuple, uid; /* its slot, and which tuple held the slot then */
} Wait;

/* Fixed-size blocks by number (0 is none), for what only some directions need. Blocks come
 * from a free list, else from the never-used tail: pages are touched only once used. */
typedef struct {
    uint8_t *blocks;
    size_t size;
    uint32_t cap, fresh, free; /* free: first block of the free list (linked through its first bytes) */
    uint32_t used;
} Blocks;

typedef struct {
    Tuple *tuples;
    int64_t n_tuples, cap_tuples, free_tuple; /* free list through Tuple.first */
    Inc *incs;
    int64_t cap_incs, fresh_inc, free_inc; /* free list through Inc.next; [fresh_inc, cap) never used */
    int32_t *index;                        /* hash slot -> tuple, -1 empty */
    int64_t index_mask, live;
    uint64_t *retired_key; /* tuples retired before: hash -> incarnations already emitted */
    int64_t *retired_count, retired_mask, retired_n;
    int64_t port_peers[65536];
    /* Addresses and host pairs segments were sent to, with the first time: is the direction
     * toward a SYN's sender in the capture at all (docs/rules.md "Honesty about the capture
     * point")? */
    Addr *toward;
    int64_t toward_mask, toward_n;
    int64_t next_uid;
    int64_t held;       /* incarnations in the pool */
    int64_t early_held; /* held before incarnations of going tuples are handed out early */
    int64_t frozen_tuples, frozen_bytes;
    double idle_gap_s, closed_hold_s, open_hold_s;
    Blocks heads, gaps;
    /* Tuples that may turn quiet, in the order they are due to be looked at (nearly: capture time
     * runs nearly in order): a ring of cap_waiting entries from waiting_head. */
    Wait *waiting;
    int64_t waiting_head, n_waiting, cap_waiting;
    /* Live: tuples that got segments since the last peek (only once track() was called). */
    int tracking;
    int64_t *touched, n_touched, cap_touched;
} Table;

static Inc BLANK; /* an incarnation before its first segment (PyInit fills it) */

static inline int64_t sdiff(uint32_t a, uint32_t b) { return (int64_t)(int32_t)(a - b); }

static inline uint64_t mix(uint64_t h, uint64_t v) {
    uint64_t x = (h ^ v) * UINT64_C(0x9E3779B97F4A7C15);
    x ^= x >> 31;
    x *= UINT64_C(0xBF58476D1CE4E5B9);
    x ^= x >> 29;
    return x;
}

static void dir_init(Dir *s) {
    memset(s, 0, sizeof *s);
    s->first_frame = s->last_frame = s->syn_frame = s->cut_frame = s->fin_frame = s->acking_frame = NONE;
    s->fin_ack_u = NONE;
    s->ack_of_fin_frame = s->rst_frame = s->kill_frame = s->max_ack_frame = NONE;
    s->rst_cut_frame[0] = s->rst_cut_frame[1] = s->data_after_peer_fin_frame = NONE;
    s->fin_seq_u = s->nxt_u = s->max_ack_u = s->head_start_u = NONE;
    s->gap_nxt_u = s->gap_nxt_frame = NONE;
    s->syn_wscale = -1;
    s->first_ts = s->last_ts = s->syn_ts = s->fin_ts = s->last_fin_ts = NAN;
    s->ack_of_fin_ts = s->rst_cut_ts[0] = s->rst_cut_ts[1] = NAN;
    s->kill_ts = s->max_ack_ts = s->data_after_peer_fin_ts = NAN;
}

static void blank_init(void) {
    memset(&BLANK, 0, sizeof BLANK); /* padding too: frozen records compare whole words */
    BLANK.pure_syn_frame = BLANK.synack_frame = NONE;
    BLANK.pure_syn_dir = BLANK.synack_dir = -1;
    BLANK.next = -1;
    dir_init(&BLANK.d[0]);
    dir_init(&BLANK.d[1]);
}

/* ---- storage ---------------------------------------------------------------------------- */

static int64_t new_inc(Table *t) {
    int64_t i = t->free_inc;
    if (i >= 0) {
        t->free_inc = t->incs[i].next;
    } else {
        if (t->fresh_inc == t->cap_incs) {
            int64_t cap = t->cap_incs ? t->cap_incs * 2 : 1024;
            Inc *p = realloc(t->incs, (size_t)cap * sizeof(Inc));
            if (!p) return -1;
            t->incs = p;
            t->cap_incs = cap;
        }
        i = t->fresh_inc++;
    }
    t->held++;
    return i;
}

static int64_t new_tuple(Table *t) {
    if (t->free_tuple < 0) {
        int64_t old = t->cap_tuples, cap = old ? old * 2 : 1024;
        Tuple *p = realloc(t->tuples, (size_t)cap * sizeof(Tuple));
        if (!p) return -1;
        t->tuples = p;
        t->cap_tuples = cap;
        for (int64_t i = cap - 1; i >= old; i--) { t->tuples[i].live = 0; t->tuples[i].first = (int32_t)t->free_tuple; t->free_tuple = i; }
    }
    int64_t i = t->free_tuple;
    t->free_tuple = t->tuples[i].first;
    return i;
}

static inline void *block_at(const Blocks *b, uint32_t i) { return b->blocks + (size_t)i * b->size; }

/* A block (its bytes undefined), 0 when out of memory. Block 0 is never handed out. */
static uint32_t take_block(Blocks *b) {
    uint32_t i = b->free;
    if (i) {
        memcpy(&b->free, block_at(b, i), sizeof(uint32_t));
        b->used++;
        return i;
    }
    if (!b->fresh) b->fresh = 1;
    if (b->fresh >= b->cap) {
        uint32_t cap = b->cap ? 2 * b->cap : 1024;
        if (cap <= b->cap) return 0;
        uint8_t *p = realloc(b->blocks, (size_t)cap * b->size);
        if (!p) return 0;
        b->blocks = p;
        b->cap = cap;
    }
    b->used++;
    return b->fresh++;
}

static void give_block(Blocks *b, uint32_t i) {
    if (!i) return;
    memcpy(block_at(b, i), &b->free, sizeof(uint32_t));
    b->free = i;
    b->used--;
}

static void free_blocks(Blocks *b) {
    free(b->blocks);
    b->blocks = NULL;
    b->cap = b->fresh = b->free = b->used = 0;
}

/* A slot of the pool back on the free list; `release`: with the blocks its directions hold
 * (not when those moved into a frozen record). */
static void drop_inc(Table *t, int64_t j, int release) {
    if (release) {
        for (int d = 0; d < 2; d++) {
            give_block(&t->heads, t->incs[j].d[d].head);
            give_block(&t->gaps, t->incs[j].d[d].gaps);
        }
    }
    t->incs[j].next = t->free_inc;
    t->free_inc = j;
    t->held--;
}

/* Rebuild the hash index for the live tuples, sized to keep it at most half full. */
static int rebuild_index(Table *t, int64_t want_live) {
    int64_t size = 1024;
    while (size < 2 * want_live + 2) size *= 2;
    if (size - 1 != t->index_mask) {
        int32_t *p = realloc(t->index, (size_t)size * sizeof(int32_t));
        if (!p) return -1;
        t->index = p;
        t->index_mask = size - 1;
    }
    memset(t->index, 0xff, (size_t)size * sizeof(int32_t));
    for (int64_t i = 0; i < t->cap_tuples; i++) {
        if (!t->tuples[i].live) continue;
        int64_t s = (int64_t)(t->tuples[i].hash & (uint64_t)t->index_mask);
        while (t->index[s] >= 0) s = (s + 1) & t->index_mask;
        t->index[s] = (int32_t)i;
    }
    return 0;
}

static int64_t *retired_slot(Table *t, uint64_t key, int insert) {
    if (insert && 2 * (t->retired_n + 1) > t->retired_mask + 1) {
        int64_t size = t->retired_mask ? 2 * (t->retired_mask + 1) : 1024;
        uint64_t *k = calloc((size_t)size, sizeof(uint64_t));
        int64_t *c = calloc((size_t)size, sizeof(int64_t));
        if (!k || !c) { free(k); free(c); return NULL; }
        for (int64_t i = 0; t->retired_mask && i <= t->retired_mask; i++) {
            if (!t->retired_key[i]) continue;
            int64_t s = (int64_t)(t->retired_key[i] & (uint64_t)(size - 1));
            while (k[s]) s = (s + 1) & (size - 1);
            k[s] = t->retired_key[i];
            c[s] = t->retired_count[i];
        }
        free(t->retired_key);
        free(t->retired_count);
        t->retired_key = k;
        t->retired_count = c;
        t->retired_mask = size - 1;
    }
    if (!t->retired_mask) return NULL;
    key |= 1; /* 0 marks an empty slot */
    int64_t s = (int64_t)(key & (uint64_t)t->retired_mask);
    while (t->retired_key[s] && t->retired_key[s] != key) s = (s + 1) & t->retired_mask;
    if (!t->retired_key[s]) {
        if (!insert) return NULL;
        t->retired_key[s] = key;
        t->retired_n++;
    }
    return &t->retired_count[s];
}

/* How long after an incarnation's last segment the direction toward its endpoints is looked
 * for: the hold before a closed tuple is handed out, so the answer never depends on where the
 * capture was cut into batches. */
static double toward_bound(const Table *t, const Inc *inc) {
    return fmax(inc->d[0].last_ts, inc->d[1].last_ts) + t->closed_hold_s;
}

/* The slot of an address (`pair` 0) or of the pair from (fhi, flo) to it (`pair` 1) in
 * Table.toward (ctx: where it was carried), NULL when absent and not `insert`, or out of memory. */
static Addr *toward_slot(Table *t, uint32_t ctx, uint64_t hi, uint64_t lo, uint32_t pair, uint64_t fhi,
                         uint64_t flo, int insert) {
    if (insert && 2 * (t->toward_n + 1) > t->toward_mask + 1) {
        int64_t size = t->toward_mask ? 2 * (t->toward_mask + 1) : 1024;
        Addr *a = calloc((size_t)size, sizeof(Addr));
        if (!a) return NULL;
        for (int64_t i = 0; t->toward_mask && i <= t->toward_mask; i++) {
            if (!t->toward[i].key) continue;
            int64_t s = (int64_t)(t->toward[i].key & (uint64_t)(size - 1));
            while (a[s].key) s = (s + 1) & (size - 1);
            a[s] = t->toward[i];
        }
        free(t->toward);
        t->toward = a;
        t->toward_mask = size - 1;
    }
    if (!t->toward_mask) return NULL;
    if (!pair) fhi = flo = 0;
    uint64_t key = mix(mix(hi ^ (((uint64_t)pair << 32 | ctx) * UINT64_C(0x9E3779B97F4A7C15)), lo),
                       fhi ^ flo * UINT64_C(0xBF58476D1CE4E5B9)) | 1;
    int64_t s = (int64_t)(key & (uint64_t)t->toward_mask);
    for (; t->toward[s].key; s = (s + 1) & t->toward_mask) {
        Addr *x = &t->toward[s];
        if (x->key == key && x->lo == lo && x->hi == hi && x->from_lo == flo && x->from_hi == fhi &&
            x->ctx == ctx && x->pair == pair)
            return x;
    }
    if (!insert) return NULL;
    Addr *x = &t->toward[s];
    x->key = key; x->hi = hi; x->lo = lo; x->from_hi = fhi; x->from_lo = flo; x->ctx = ctx; x->pair = pair;
    x->first_ts = x->acking_ts = INFINITY;
    t->toward_n++;
    return x;
}

/* Toward endpoint `e` of the tuple (0: A, 1: B): from anywhere (`pair` 0) or from the other
 * endpoint's address (`pair` 1). */
static const Addr *toward_of(Table *t, const Tuple *tp, int e, uint32_t pair) {
    return toward_slot(t, tp->ctx, e ? tp->b_hi : tp->a_hi, e ? tp->b_lo : tp->a_lo, pair,
                       e ? tp->a_hi : tp->b_hi, e ? tp->a_lo : tp->b_lo, 0);
}

/* When the capture first shows, on any connection, a segment toward the sender `e` of a lone
 * SYN, as far as it tells the direction toward it is captured, INFINITY when it does not. From
 * the SYN's target host: the direction is captured. Else, when the host pair holds connections
 * whose segments toward the target acknowledge what never came back (one-sided): it is not.
 * Else, from any host (a scan of hosts that are down). */
static double toward_first(Table *t, const Tuple *tp, const Inc *inc, int e) {
    const Addr *back = toward_of(t, tp, e, 1), *out = toward_of(t, tp, 1 - e, 1), *any = toward_of(t, tp, e, 0);
    double bound = toward_bound(t, inc);
    if (back && back->first_ts <= bound) return back->first_ts;
    if (out && out->acking_ts <= bound) return INFINITY;
    return any ? any->first_ts : INFINITY;
}

/* Only SYNs (one ISN, any copies) from the sender of the first pure SYN, nothing from the peer. */
static int syn_only(const Inc *inc) {
    if (inc->pure_syn_frame == NONE) return 0;
    const Dir *s = &inc->d[inc->pure_syn_dir], *r = &inc->d[1 - inc->pure_syn_dir];
    return r->packets == 0 && s->syn_copies == s->packets;
}

/* The same, perhaps followed by RSTs of the SYN's sender (it gave up): a SYN whose verdict is
 * `unanswered` or `unknown`, decided by the direction toward its sender. */
static int syn_attempt(const Inc *inc) {
    if (inc->pure_syn_frame == NONE) return 0;
    const Dir *s = &inc->d[inc->pure_syn_dir], *r = &inc->d[1 - inc->pure_syn_dir];
    return r->packets == 0 && s->syn_copies == s->nonrst_packets;
}

/* A lone SYN (sent once, perhaps then given up with an RST) whose verdict waits on whether the
 * capture holds the direction toward its sender: not settled before `now` passes the bound,
 * unless its target host was seen sending toward it (later segments can change any other answer). */
static int toward_pending(Table *t, const Tuple *tp, const Inc *inc, double now) {
    if (!syn_attempt(inc) || inc->d[inc->pure_syn_dir].syn_copies != 1) return 0;
    double bound = toward_bound(t, inc);
    const Addr *back = toward_of(t, tp, (int)inc->pure_syn_dir, 1);
    return now <= bound && !(back && back->first_ts <= bound);
}

/* ---- one segment ----------------------------------------------------------------------- */

typedef struct {
    int64_t frame;
    double ts;
    uint32_t ctx, seq, ack;
    uint8_t ip_version, flags;
    uint64_t src_hi, src_lo, dst_hi, dst_lo;
    uint16_t sport, dport, window;
    int64_t payload, tsval, wscale;
    const uint8_t *head; /* captured payload bytes, head_len of them */
    int64_t head_len;
} Seg;

/* The facts of an RST (RstFact), from the state both directions had reached before it. */
static uint8_t rst_facts(const Inc *inc, const Dir *s, const Dir *r, const Seg *g, int64_t seq_u) {
    int rcv_known = (r->known & HAS_ACK) != 0;
    int64_t expected = s->nxt_u; /* known once S sent anything but an RST */
    int64_t scale = inc->d[0].syn_wscale >= 0 && inc->d[1].syn_wscale >= 0 ? r->syn_wscale : 0;
    int64_t window = (int64_t)r->last_window << scale;
    int64_t ahead = rcv_known ? sdiff(g->seq, r->ack_raw) : 0;
    uint8_t facts = 0;
    if (s->nonrst_packets > 0) facts |= RST_SENDER_SEEN;
    if (rcv_known) facts |= RST_ACK_KNOWN;
    if (rcv_known && g->seq == r->ack_raw) facts |= RST_ANSWERS_ACK;
    if (g->seq == 0 && (g->flags & ACK)) facts |= RST_ZERO_ACK;
    if ((expected != NONE && seq_u == expected) || (rcv_known && seq_u == r->ack_u)) facts |= RST_EXACT;
    if (rcv_known && ahead > 0 && ahead < window) facts |= RST_IN_WINDOW;
    return facts;
}

/* Whether R drops the RST unread: the capture knows R's state (S's stream or R's ACK), and the
 * RST matches it neither exactly nor inside R's window, nor is it a closed port's answer (RFC
 * 5961 §3.2; RFC 9293 §3.10.7.4, "second, check the RST bit"). The table needs this much to keep
 * the RST that may close (an ignored one closes nothing) and to know a connection is closing;
 * it is the class `out_of_window` of verdicts.py (rst_class), which names every class. */
static int rst_ignored(uint8_t facts) {
    int closed_port = !(facts & RST_SENDER_SEEN) && (facts & (RST_ANSWERS_ACK | RST_ZERO_ACK));
    int state_known = (facts & (RST_SENDER_SEEN | RST_ACK_KNOWN)) != 0;
    return state_known && !closed_port && !(facts & (RST_EXACT | RST_IN_WINDOW));
}

/* An RST from direction d carrying d's FIN + 1, once the peer (the TIME_WAIT holder, if any)
 * may be in TIME_WAIT: from its ACK of that FIN, or from the FIN where the ACK is unseen. */
static void note_kill(Inc *inc, int d, const Seg *g) {
    Dir *x = &inc->d[d], *holder = &inc->d[1 - d];
    if (x->fin_frame == NONE || x->kill_frame != NONE) return;
    if ((int64_t)g->seq != (int64_t)(uint32_t)(x->fin_seq_u + 1)) return;
    double start = holder->ack_of_fin_frame != NONE ? holder->ack_of_fin_ts : x->fin_ts;
    if (!(g->ts >= start)) return;
    x->kill_frame = g->frame;
    x->kill_ts = g->ts;
}

/* ---- capture loss: gaps in a direction's sequence space ---------------------------------- */

/* Keep a gap, or only count its bytes when HOLES gaps are open already. */
static void keep_hole(Gaps *s, Hole h) {
    if (h.hi <= h.lo) return;
    if (s->n_holes < HOLES) { s->holes[s->n_holes++] = h; return; }
    s->spill_bytes += h.hi - h.lo;
    if (s->spill_lo_u == NONE || h.lo < s->spill_lo_u) s->spill_lo_u = h.lo;
    if (h.hi > s->spill_hi_u) s->spill_hi_u = h.hi;
}

/* A segment [seq, end) below what the capture showed before: it fills the part of any gap it
 * covers (the capture saw a retransmission; a copy of bytes seen before fills nothing). */
static void fill_holes(Gaps *s, int64_t seq, int64_t end, int64_t frame) {
    for (int64_t i = 0; i < s->n_holes;) {
        Hole *h = &s->holes[i];
        if (end <= h->lo || seq >= h->hi) { i++; continue; }
        if (seq <= h->lo && end >= h->hi) { *h = s->holes[--s->n_holes]; continue; }
        if (seq <= h->lo) { h->lo = end; h->before_frame = frame; }
        else if (end >= h->hi) { h->hi = seq; h->after_frame = frame; }
        else {
            /* Inside: two gaps. The one below is bounded by seen segments; when no slot is free it
             * is the one only counted, so the slot keeps the span later segments go on filling. */
            Hole below = {h->lo, seq, h->before_frame, frame};
            h->lo = end; h->before_frame = frame;
            keep_hole(s, below);
        }
        i++;
    }
    if (s->spill_bytes && end > s->spill_lo_u && seq < s->spill_hi_u) {
        /* Counted gaps have no exact bounds: whatever lands in their span lowers the count (a
         * resent copy of seen bytes too, so the count errs low, never high). */
        int64_t hit = (end < s->spill_hi_u ? end : s->spill_hi_u) - (seq > s->spill_lo_u ? seq : s->spill_lo_u);
        s->spill_bytes = s->spill_bytes > hit ? s->spill_bytes - hit : 0;
    }
}

/* The gaps of S, taking their block at S's first gap; NULL when out of memory. */
static Gaps *gaps_of(Table *t, Dir *s) {
    if (!s->gaps) {
        if (!(s->gaps = take_block(&t->gaps))) return NULL;
        Gaps *x = block_at(&t->gaps, s->gaps);
        memset(x, 0, sizeof *x);
        x->spill_lo_u = x->spill_hi_u = NONE;
    }
    return block_at(&t->gaps, s->gaps);
}

/* Where a segment of S lies against what the capture showed of S so far: beyond it, a gap opens
 * [gap_nxt, seq) (an RST's sequence number counts, though it occupies none); below it, it may
 * fill a gap. A keep-alive or window probe (seq = next - 1) lies below and fills nothing.
 * -1 when out of memory. */
static inline int note_gap(Table *t, Dir *s, int64_t seq, int64_t end, int64_t frame, int rst) {
    if (s->gap_nxt_u == NONE) {
        if (rst) return 0; /* an RST as a side's first segment: where its stream lies is unknown */
    } else if (seq > s->gap_nxt_u) {
        Gaps *x = gaps_of(t, s);
        if (!x) return -1;
        keep_hole(x, (Hole){s->gap_nxt_u, seq, s->gap_nxt_frame, frame});
    } else if (s->gaps && end > seq) {
        Gaps *x = block_at(&t->gaps, s->gaps);
        if (x->n_holes | x->spill_bytes) fill_holes(x, seq, end, frame);
    }
    /* The frame before a gap is the last segment reaching its start (a pure ACK after the data
     * too), never an RST that only lies there. */
    if (end > s->gap_nxt_u || (end == s->gap_nxt_u && !rst)) { s->gap_nxt_u = end; s->gap_nxt_frame = frame; }
    return 0;
}

/* A side's first SYN starts its sequence space afresh: the gaps before it are forgotten. */
static void forget_gaps(Table *t, Dir *s) {
    s->gap_nxt_u = NONE;
    if (s->gaps) {
        Gaps *x = block_at(&t->gaps, s->gaps);
        x->n_holes = x->spill_bytes = 0;
    }
}

static int add_segment(Table *t, Tuple *tp, Inc *inc, int d, const Seg *g) {
    Dir *s = &inc->d[d], *r = &inc->d[1 - d];
    int syn = g->flags & SYN, fin = g->flags & FIN, rst = g->flags & RST, ack = g->flags & ACK;
    int64_t pl = g->payload;

    int64_t seq_u = (s->known & HAS_SEQ) ? s->seq_u + sdiff(g->seq, s->seq_raw)
                  : (r->known & HAS_ACK) ? r->ack_u + sdiff(g->seq, r->ack_raw) : (int64_t)g->seq;
    int64_t ack_u = NONE;
    if (ack)
        ack_u = (r->known & HAS_SEQ) ? r->seq_u + sdiff(g->ack, r->seq_raw)
              : (s->known & HAS_ACK) ? s->ack_u + sdiff(g->ack, s->ack_raw) : (int64_t)g->ack;

    if (rst) {
        uint8_t facts = rst_facts(inc, s, r, g, seq_u);
        if (s->rst_frame == NONE) s->rst_frame = g->frame;
        /* The RST that may have ended the connection: the first one its receiver would not
         * ignore. An RST out of the receiver's window is dropped by every stack (docs/rules.md
         * "RST classes"), so it is kept only until one that could close comes (the row then
         * still shows it), and it closes nothing. */
        int ignored = rst_ignored(facts);
        for (int e = 0; e < 2; e++)
            if (s->rst_cut_frame[e] == NONE || (rst_ignored(s->rst_cut_facts[e]) && !ignored)) {
                s->rst_cut_frame[e] = g->frame; s->rst_cut_ts[e] = g->ts; s->rst_cut_facts[e] = facts;
            }
        note_kill(inc, d, g);
        if (tp->prev >= 0) note_kill(&t->incs[tp->prev], d, g);
        if (note_gap(t, s, seq_u, seq_u, g->frame, 1)) return -1;
        if (!ignored) inc->closers_seen = 1;
    }
    if (syn) {
        if (s->syn_frame == NONE) {
            s->syn_frame = g->frame; s->syn_ts = g->ts; s->syn_seq = g->seq;
            s->syn_wscale = (int8_t)g->wscale; s->syn_has_ack = ack != 0;
            if (g->tsval >= 0) { s->syn_tsval = (uint32_t)g->tsval; s->known |= SYN_TSVAL; }
        }
        if (!ack && g->seq == s->syn_seq) s->syn_copies++;
        if (!ack && inc->pure_syn_frame == NONE) { inc->pure_syn_frame = g->frame; inc->pure_syn_dir = (int8_t)d; }
        if (ack && inc->synack_frame == NONE) { inc->synack_frame = g->frame; inc->synack_dir = (int8_t)d; }
    }
    if ((g->flags & (ACK | SYN | RST)) == ACK && r->syn_frame != NONE && s->cut_frame == NONE) {
        /* RSTs before the handshake's third segment belong to the handshake (docs/rules.md
         * §Close verdicts 4): forget them for the hypothesis "d is the client". */
        s->cut_frame = g->frame;
        inc->d[0].rst_cut_frame[d] = inc->d[1].rst_cut_frame[d] = NONE;
        inc->d[0].rst_cut_ts[d] = inc->d[1].rst_cut_ts[d] = NAN;
        inc->d[0].rst_cut_facts[d] = inc->d[1].rst_cut_facts[d] = 0;
    }
    if (pl > 0) {
        /* Half-close: data the peer's FIN did not stop. Bytes sent again (the FIN, or the ACK it
         * carried, lost on the way) are not more sending: only data beyond the highest sent. */
        if (r->fin_frame != NONE && (s->nxt_u == NONE || seq_u + pl > s->nxt_u)) {
            s->data_after_peer_fin_frame = g->frame; s->data_after_peer_fin_ts = g->ts;
        }
        if (s->fin_frame != NONE) {
            if (seq_u + pl > s->fin_seq_u) s->new_data_after_fin = 1;
            else s->resent_after_fin = 1;
        }
        if (s->head_start_u == NONE && !rst) s->head_start_u = seq_u;
        if (s->head_start_u != NONE && seq_u == s->head_start_u + s->head_len && s->head_len < HEAD_BYTES) {
            int64_t n = g->head_len < HEAD_BYTES - s->head_len ? g->head_len : HEAD_BYTES - s->head_len;
            if (n > 0) {
                /* The block is taken with the first payload byte captured: most directions of a
                 * busy capture carry some, but a SYN, an ACK or a flood's probe never does. */
                if (!s->head && !(s->head = take_block(&t->heads))) return -1;
                memcpy((uint8_t *)block_at(&t->heads, s->head) + s->head_len, g->head, (size_t)n);
                s->head_len = (uint16_t)(s->head_len + n);
            }
        }
    }
    if (fin) {
        int64_t fin_seq = seq_u + pl + (syn ? 1 : 0);
        if (s->fin_frame == NONE) {
            s->fin_frame = g->frame; s->fin_ts = g->ts; s->fin_seq_u = fin_seq; s->fin_copies = 1;
            s->fin_ack_u = ack_u;
            /* Captured out of order (e.g. merged interfaces): the peer acknowledged it already. */
            if (r->ack_of_fin_frame == NONE && r->max_ack_u != NONE && r->max_ack_u >= fin_seq + 1) {
                r->ack_of_fin_frame = r->max_ack_frame; r->ack_of_fin_ts = r->max_ack_ts;
            }
        } else if (fin_seq == s->fin_seq_u) {
            s->fin_copies++;
        }
        s->last_fin_ts = g->ts;
        inc->closers_seen = 1;
    }
    if (ack && r->fin_frame != NONE && s->ack_of_fin_frame == NONE && ack_u >= r->fin_seq_u + 1) {
        s->ack_of_fin_frame = g->frame; s->ack_of_fin_ts = g->ts;
    }
    if (!rst) {
        int64_t end = seq_u + pl + (syn ? 1 : 0) + (fin ? 1 : 0);
        /* The side's first SYN starts its sequence space: what it sent before on the tuple (an
         * ACK of the old connection, answering a reused 4-tuple in TIME_WAIT) leaves no gap. */
        if (syn && s->syn_frame == g->frame) forget_gaps(t, s);
        if (note_gap(t, s, seq_u, end, g->frame, 0)) return -1;
        if (s->acking_frame == NONE && ((ack && g->ack != 0) || (pl > 0 && !syn))) s->acking_frame = g->frame;
        if (end > s->nxt_u) s->nxt_u = end;
        s->nonrst_packets++;
        s->known |= HAS_SEQ; s->seq_raw = g->seq; s->seq_u = seq_u;
        if (ack) {
            if (ack_u > s->max_ack_u) { s->max_ack_u = ack_u; s->max_ack_frame = g->frame; s->max_ack_ts = g->ts; }
            s->known |= HAS_ACK; s->ack_raw = g->ack; s->ack_u = ack_u; s->last_window = g->window;
        }
    }
    if (s->first_frame == NONE) {
        s->first_frame = g->frame; s->first_ts = g->ts; s->first_flags = g->flags; s->first_seq = g->seq;
    }
    s->last_frame = g->frame;
    s->last_ts = g->ts;
    if (g->tsval >= 0) { s->last_tsval = (uint32_t)g->tsval; s->known |= LAST_TSVAL; }
    else s->known &= (uint8_t)~LAST_TSVAL;
    s->packets++;
    s->bytes += pl;
    inc->port_peers_a = t->port_peers[tp->a_port];
    inc->port_peers_b = t->port_peers[tp->b_port];
    return 0;
}

static int64_t start_incarnation(Table *t, Tuple *tp) {
    int64_t i = new_inc(t);
    if (i < 0) return -1;
    Inc *inc = &t->incs[i];
    *inc = BLANK;
    inc->index_in_tuple = tp->n_incs++;
    if (tp->cur >= 0) t->incs[tp->cur].next = i;
    else tp->first = (int32_t)i;
    tp->prev = tp->cur;
    tp->cur = (int32_t)i;
    return i;
}

/* The tuple of a segment, created on first sight. Endpoint A is the smaller (address, port). */
static Tuple *find_tuple(Table *t, const Seg *g, int *d) {
    int a_is_src = g->src_hi < g->dst_hi || (g->src_hi == g->dst_hi && (g->src_lo < g->dst_lo ||
                   (g->src_lo == g->dst_lo && g->sport <= g->dport)));
    uint64_t a_hi = a_is_src ? g->src_hi : g->dst_hi, a_lo = a_is_src ? g->src_lo : g->dst_lo;
    uint64_t b_hi = a_is_src ? g->dst_hi : g->src_hi, b_lo = a_is_src ? g->dst_lo : g->src_lo;
    uint16_t a_port = a_is_src ? g->sport : g->dport, b_port = a_is_src ? g->dport : g->sport;
    *d = !a_is_src;
    uint64_t h = mix(mix(mix(mix(mix(g->ctx, ((uint64_t)a_port << 16) | b_port), a_hi), a_lo), b_hi), b_lo);
    int64_t s = (int64_t)(h & (uint64_t)t->index_mask);
    for (; t->index[s] >= 0; s = (s + 1) & t->index_mask) {
        Tuple *tp = &t->tuples[t->index[s]];
        if (tp->hash == h && tp->a_lo == a_lo && tp->b_lo == b_lo && tp->a_hi == a_hi && tp->b_hi == b_hi &&
            tp->a_port == a_port && tp->b_port == b_port && tp->ctx == g->ctx)
            return tp;
    }
    if (2 * (t->live + 1) > t->index_mask + 1) {
        if (rebuild_index(t, 2 * (t->live + 1))) return NULL;
        return find_tuple(t, g, d);
    }
    int64_t i = new_tuple(t);
    if (i < 0) return NULL;
    t->index[s] = (int32_t)i;
    Tuple *tp = &t->tuples[i];
    memset(tp, 0, sizeof *tp);
    tp->a_hi = a_hi; tp->a_lo = a_lo; tp->b_hi = b_hi; tp->b_lo = b_lo; tp->hash = h;
    tp->ctx = g->ctx; tp->a_port = a_port; tp->b_port = b_port;
    tp->first = tp->cur = tp->prev = tp->kept = -1;
    tp->uid = t->next_uid++;
    tp->live = 1;
    int64_t *before = retired_slot(t, h, 0);
    tp->n_incs = before ? *before : 0;
    /* Count a tuple the first time it is ever seen, not each time it comes back after being
     * retired: then the count does not depend on when retiring happened (batch boundaries),
     * and a run split by tuple across processes can rebuild it from first sightings. */
    if (!before) {
        t->port_peers[a_port]++;
        if (b_port != a_port) t->port_peers[b_port]++;
    }
    t->live++;
    return tp;
}

static int note_touched(Table *t, Tuple *tp) {
    /* A segment changes its own incarnation and, through note_kill and the reuse verdict, the
     * one before it. */
    int64_t from = t->incs[tp->cur].index_in_tuple - 1;
    if (tp->touched) {
        if (from < tp->peek_from) tp->peek_from = from;
        return 0;
    }
    if (t->n_touched == t->cap_touched) {
        int64_t cap = t->cap_touched ? 2 * t->cap_touched : 1024;
        int64_t *p = realloc(t->touched, (size_t)cap * sizeof(int64_t));
        if (!p) return -1;
        t->touched = p;
        t->cap_touched = cap;
    }
    t->touched[t->n_touched++] = tp - t->tuples;
    tp->touched = 1;
    tp->peek_from = from;
    return 0;
}

/* ---- quiet attempts: frozen while they wait out their hold ------------------------------- */

/* A connection attempt that failed or went unanswered: pure SYNs with one ISN from the first
 * SYN's sender and RSTs of either side, nothing else (no SYN-ACK, ACK, data or FIN): a SYN
 * flood's or a scan's probes, refused connects, connects given up. Such an incarnation is
 * closed (done_by: an RST, or SYNs only), so its tuple is held closed_hold_s after its last
 * segment; what can still come meanwhile is a retry of the SYN, an answer, or a new attempt. */
static int quiet(const Inc *inc) {
    if (inc->pure_syn_frame == NONE || inc->synack_frame != NONE) return 0;
    const Dir *s = &inc->d[inc->pure_syn_dir], *r = &inc->d[1 - inc->pure_syn_dir];
    return r->nonrst_packets == 0 && s->syn_copies == s->nonrst_packets && s->fin_frame == NONE;
}

/* When the next retry of a quiet attempt's SYN is due at the latest, counted from its tuple's
 * last segment (at `last_ts`): FIRST_RETRY_S after a SYN sent once; after retries, twice the
 * time they have taken so far (the RTO doubles at each retry, RFC 6298 §5.5, so the next wait
 * is twice the last one, which is at most the whole span). Past it, the sender has stopped
 * retrying (it gave up, or never retries: a flood, a scanner) or a retry went by the capture
 * unseen. */
static double retry_due(const Inc *inc, double last_ts) {
    const Dir *s = &inc->d[inc->pure_syn_dir];
    return last_ts + fmax(FIRST_RETRY_S, 2 * (s->last_ts - s->syn_ts));
}

/* A tuple whose incarnations are all quiet attempts (the current one's SYN retry past due: see
 * freeze_quiet) is frozen: its records (~760 bytes each) become a few words (see freeze) until a
 * segment comes on the tuple or its hold ends. Not while live tracking may peek at it, nor with
 * a copy kept for context. */
static int freezable(const Table *t, const Tuple *tp) {
    if (tp->touched || tp->kept >= 0 || tp->cur < 0) return 0;
    for (int64_t j = tp->first; j >= 0; j = t->incs[j].next)
        if (!quiet(&t->incs[j])) return 0;
    return 1;
}

static inline uint64_t word_of(const Inc *inc, size_t i) {
    uint64_t w;
    memcpy(&w, (const uint8_t *)inc + 8 * i, 8);
    return w;
}

/* `v` as a LEB128 varint at `out` (when given); returns its length in bytes. */
static inline int64_t put_varint(uint64_t v, uint8_t *out) {
    int64_t n = 1;
    for (; v >= 0x80; v >>= 7, n++)
        if (out) *out++ = (uint8_t)(v | 0x80);
    if (out) *out = (uint8_t)v;
    return n;
}

static inline uint64_t get_varint(const uint8_t **at) {
    uint64_t v = 0;
    for (int shift = 0;; shift += 7) {
        uint8_t b = *(*at)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return v;
    }
}

/* One incarnation as the bitmap of its words that differ from BLANK, then each of those words
 * as the zigzag varint of its difference to the one before (into `out` when given); returns
 * how many bytes that takes. Its link in the pool is not kept. */
static int64_t encode(const Inc *inc, uint8_t *out) {
    Inc x = *inc;
    x.next = BLANK.next;
    x.context = BLANK.context;
    uint64_t map[MAP_WORDS] = {0}, before = 0;
    int64_t n = sizeof map;
    for (size_t i = 0; i < INC_WORDS; i++) {
        uint64_t w = word_of(&x, i);
        if (w == word_of(&BLANK, i)) continue;
        map[i / 64] |= UINT64_C(1) << (i % 64);
        int64_t delta = (int64_t)(w - before);
        n += put_varint(((uint64_t)delta << 1) ^ (uint64_t)(delta >> 63), out ? out + n : NULL);
        before = w;
    }
    if (out) memcpy(out, map, sizeof map);
    return n;
}

/* The incarnation `encode` wrote at `*at` into `inc`; moves `*at` past it. */
static void decode(const uint8_t **at, Inc *inc) {
    uint64_t map[MAP_WORDS], before = 0;
    memcpy(map, *at, sizeof map);
    *at += sizeof map;
    *inc = BLANK;
    for (size_t m = 0; m < MAP_WORDS; m++) {
        for (uint64_t bits = map[m]; bits; bits &= bits - 1) {
            uint64_t z = get_varint(at), w = before + ((z >> 1) ^ (0 - (z & 1)));
            memcpy((uint8_t *)inc + 8 * (64 * m + (size_t)__builtin_ctzll(bits)), &w, 8);
            before = w;
        }
    }
}

/* Freeze a tuple's incarnations: each record leaves the pool as what differs from a blank one
 * (~130 bytes for a lone SYN); the blocks its directions hold go with it. Lossless: a segment
 * on the tuple thaws them back exactly as they were (feed_one), and so does the end of their
 * hold (retire), so no verdict can tell whether a tuple was frozen. -1: out of memory. */
static int freeze(Table *t, Tuple *tp) {
    int64_t n = 0, bytes = 0;
    for (int64_t j = tp->first; j >= 0; j = t->incs[j].next) {
        n++;
        bytes += encode(&t->incs[j], NULL);
    }
    Frozen *f = malloc(sizeof(Frozen) + (size_t)bytes);
    if (!f) return -1;
    f->n_incs = (uint32_t)n;
    f->n_bytes = (uint32_t)bytes;
    uint8_t *at = f->b;
    for (int64_t j = tp->first; j >= 0;) {
        int64_t next = t->incs[j].next;
        at += encode(&t->incs[j], at);
        drop_inc(t, j, 0);
        j = next;
    }
    tp->frozen = f;
    tp->first = tp->cur = tp->prev = -1;
    t->frozen_tuples++;
    t->frozen_bytes += (int64_t)(sizeof(Frozen) + (size_t)bytes);
    return 0;
}

/* A frozen tuple's incarnations back in the pool, in order, as they were. -1: out of memory. */
static int thaw(Table *t, Tuple *tp) {
    Frozen *f = tp->frozen;
    const uint8_t *at = f->b;
    for (uint32_t n = 0; n < f->n_incs; n++) {
        int64_t i = new_inc(t);
        if (i < 0) return -1;
        decode(&at, &t->incs[i]);
        if (tp->cur >= 0) t->incs[tp->cur].next = i;
        else tp->first = (int32_t)i;
        tp->prev = tp->cur;
        tp->cur = (int32_t)i;
    }
    t->frozen_tuples--;
    t->frozen_bytes -= (int64_t)(sizeof(Frozen) + f->n_bytes);
    free(f);
    tp->frozen = NULL;
    return 0;
}

/* Look at tuple `i` again at capture time `at`. -1: out of memory. */
static int wait_for(Table *t, int64_t i, double at) {
    if (t->n_waiting == t->cap_waiting) {
        int64_t cap = t->cap_waiting ? 2 * t->cap_waiting : 1024;
        Wait *p = malloc((size_t)cap * sizeof(Wait));
        if (!p) return -1;
        for (int64_t x = 0; x < t->n_waiting; x++) p[x] = t->waiting[(t->waiting_head + x) % t->cap_waiting];
        free(t->waiting);
        t->waiting = p;
        t->waiting_head = 0;
        t->cap_waiting = cap;
    }
    t->waiting[(t->waiting_head + t->n_waiting++) % t->cap_waiting] = (Wait){at, i, t->tuples[i].uid};
    t->tuples[i].waiting = 1;
    return 0;
}

/* Freeze the tuples whose quiet attempt's SYN retry is past due at capture time `now`: each
 * tuple that starts an attempt waits in Table.waiting until its first retry is due at the
 * latest (FIRST_RETRY_S after its SYN); looked at then, it is frozen if its attempts are all
 * quiet and the retry is past due, waits again if a retry came (the next is due later: see
 * retry_due), and is let go if the attempt was answered. So what costs memory is the attempts
 * of the last few seconds, however many millions there were before. -1: out of memory. */
static int freeze_quiet(Table *t, double now) {
    while (t->n_waiting && t->waiting[t->waiting_head].at < now) {
        Wait w = t->waiting[t->waiting_head];
        t->waiting_head = (t->waiting_head + 1) % t->cap_waiting;
        t->n_waiting--;
        if (w.tuple >= t->cap_tuples) continue; /* retired since, and the array shrank */
        Tuple *tp = &t->tuples[w.tuple];
        if (!tp->live || tp->uid != w.uid) continue; /* retired since; the slot may hold another */
        tp->waiting = 0;
        if (tp->frozen || tp->cur < 0 || !quiet(&t->incs[tp->cur])) continue;
        double due = retry_due(&t->incs[tp->cur], tp->last_ts);
        if (due >= now || tp->touched) {
            if (wait_for(t, w.tuple, fmax(due, now))) return -1;
        } else if (freezable(t, tp) && freeze(t, tp)) {
            return -1;
        }
    }
    return 0;
}

static int feed_one(Table *t, const Seg *g) {
    if (t->n_waiting && t->waiting[t->waiting_head].at < g->ts && freeze_quiet(t, g->ts)) return -1;
    int d;
    Tuple *tp = find_tuple(t, g, &d);
    if (!tp) return -1;
    if (tp->frozen && thaw(t, tp)) return -1;
    int pure_syn = (g->flags & (SYN | ACK)) == SYN;
    int start = tp->cur < 0;
    if (!start && pure_syn) {
        /* A SYN whose ISN differs from the current incarnation's opens a new incarnation once
         * the current one closed or aborted, or after an idle gap of 2*MSL (docs/rules.md
         * §Vocabulary); the same ISN again is a retransmission. A SYN that met the open
         * connection (a challenge ACK answered it) opens one when it comes again after the RST. */
        Inc *cur = &t->incs[tp->cur];
        int new_isn = cur->d[d].syn_frame == NONE || g->seq != cur->d[d].syn_seq;
        /* A client that gave up and connected again from the same port: while the current
         * incarnation holds only this side's SYNs, a new ISN is a new attempt. */
        int retry = syn_only(cur) && cur->pure_syn_dir == d;
        start = new_isn && (cur->closers_seen || retry || g->ts - tp->last_ts > t->idle_gap_s);
    }
    /* The first segment toward each endpoint on this tuple, and the first acknowledging one from
     * it: later ones cannot be earlier. */
    int acking = (g->flags & (ACK | RST)) == ACK && g->ack != 0;
    int first_toward = !(tp->toward_noted >> (1 - d) & 1);
    if (first_toward || (acking && !(tp->toward_noted >> (2 + d) & 1))) {
        Addr *x;
        if (first_toward) {
            if (!(x = toward_slot(t, g->ctx, g->dst_hi, g->dst_lo, 0, 0, 0, 1))) return -1;
            if (g->ts < x->first_ts) x->first_ts = g->ts;
        }
        /* looked up after the other: inserting may move the slots */
        if (!(x = toward_slot(t, g->ctx, g->dst_hi, g->dst_lo, 1, g->src_hi, g->src_lo, 1))) return -1;
        if (g->ts < x->first_ts) x->first_ts = g->ts;
        if (acking && g->ts < x->acking_ts) x->acking_ts = g->ts;
        tp->toward_noted |= (uint8_t)(1 << (1 - d) | (acking ? 1 << (2 + d) : 0));
    }
    if (start && start_incarnation(t, tp) < 0) return -1;
    if (t->tracking && note_touched(t, tp)) return -1; /* after: the segment's incarnation is known */
    Inc *inc = &t->incs[tp->cur];
    if (inc->ip_version == 0) inc->ip_version = g->ip_version;
    if (add_segment(t, tp, inc, d, g)) return -1;
    tp->last_ts = g->ts;
    if (!tp->waiting && quiet(inc) && wait_for(t, tp - t->tuples, g->ts + FIRST_RETRY_S)) return -1;
    return 0;
}

/* ---- records handed out ------------------------------------------------------------------ */

/* What one direction sent, as verdicts.py reads it: one numpy column per field (dir_fields),
 * values never seen as NONE (frames, sequence numbers) or -1 (raw 32-bit values: syn_seq,
 * syn_tsval, last_tsval), times never seen as NaN. */
typedef struct {
    int64_t packets, bytes, first_frame, last_frame, first_seq;
    double first_ts, last_ts;
    int64_t syn_frame, syn_seq, syn_tsval, syn_copies;
    double syn_ts;
    int64_t acking_frame, cut_frame, fin_ack_u;
    /* first segment the capture shows toward this direction's sender's address, on any
     * connection, up to the hold after this incarnation's end (for the sender of a lone SYN,
     * perhaps followed by its own RST, only: NaN otherwise) */
    double toward_ts;
    int64_t fin_frame, fin_copies, ack_of_fin_frame;
    double fin_ts, last_fin_ts, ack_of_fin_ts;
    int64_t rst_frame, rst_cut_frame[2];
    double rst_cut_ts[2];
    int64_t kill_frame;
    double kill_ts;
    int64_t nxt_u, max_ack_u, last_tsval, data_after_peer_fin_frame;
    double data_after_peer_fin_ts;
    /* bytes of this direction the peer acknowledged and the capture never showed, and the
     * frames around the first gap (settle_loss) */
    int64_t lost_bytes, gap_before_frame, gap_after_frame;
    uint16_t head_len;
    uint8_t first_flags, syn_has_ack, rst_cut_facts[2], new_data_after_fin, resent_after_fin;
} RowDir;

typedef struct {
    uint64_t a_hi, a_lo, b_hi, b_lo;
    int64_t a_port, b_port, ctx, ip_version, tuple_uid, index_in_tuple, port_peers_a, port_peers_b;
    int8_t pure_syn_dir, synack_dir;
    uint8_t context; /* handed out only to judge its neighbours (retire) */
    RowDir d[2];
} Row;

/* Fill toward_ts of a lone SYN's sender (syn_attempt), the only one whose verdict reads it (a
 * lookup per record costs more than every other fact). */
static void fill_toward(Table *t, const Tuple *tp, const Inc *inc, Row *row) {
    row->d[0].toward_ts = row->d[1].toward_ts = NAN;
    if (!syn_attempt(inc)) return;
    int e = (int)inc->pure_syn_dir;
    double first = toward_first(t, tp, inc, e), bound = toward_bound(t, inc);
    row->d[e].toward_ts = first <= bound ? first : NAN;
}

/* The bytes of S the peer acknowledged that the capture never showed, as the record is handed
 * out: gaps below both the peer's highest ACK and S's next sequence number, and the tail
 * acknowledged beyond that next sequence number; the frames around the first gap the peer
 * acknowledged (for the tail alone: the frame that reached S's last byte seen). */
static void settle_loss(const Table *t, const Inc *inc, Row *row) {
    for (int d = 0; d < 2; d++) {
        const Dir *s = &inc->d[d];
        RowDir *out = &row->d[d];
        int64_t ack = inc->d[1 - d].max_ack_u;
        out->lost_bytes = 0;
        out->gap_before_frame = out->gap_after_frame = NONE;
        if (s->nxt_u == NONE || ack == NONE) continue;
        int64_t bound = ack < s->nxt_u ? ack : s->nxt_u, lost = ack > s->nxt_u ? ack - s->nxt_u : 0;
        const Hole *first = NULL;
        if (s->gaps) {
            const Gaps *x = block_at(&t->gaps, s->gaps);
            for (int64_t i = 0; i < x->n_holes; i++) {
                const Hole *h = &x->holes[i];
                if (h->lo < bound) lost += (h->hi < bound ? h->hi : bound) - h->lo;
                if (h->lo < ack && (!first || h->lo < first->lo)) first = h;
            }
            if (x->spill_bytes && x->spill_lo_u < bound)
                lost += x->spill_bytes < bound - x->spill_lo_u ? x->spill_bytes : bound - x->spill_lo_u;
        }
        out->lost_bytes = lost;
        if (!lost) continue;
        out->gap_before_frame = first ? first->before_frame : s->gap_nxt_frame;
        out->gap_after_frame = first ? first->after_frame : NONE;
    }
}

static void row_dir(const Dir *s, RowDir *o) {
    o->packets = s->packets; o->bytes = s->bytes;
    o->first_frame = s->first_frame; o->last_frame = s->last_frame;
    o->first_seq = s->first_frame != NONE ? (int64_t)s->first_seq : NONE;
    o->first_ts = s->first_ts; o->last_ts = s->last_ts;
    o->syn_frame = s->syn_frame;
    o->syn_seq = s->syn_frame != NONE ? (int64_t)s->syn_seq : -1;
    o->syn_tsval = s->known & SYN_TSVAL ? (int64_t)s->syn_tsval : -1;
    o->syn_copies = s->syn_copies; o->syn_ts = s->syn_ts;
    o->acking_frame = s->acking_frame; o->cut_frame = s->cut_frame; o->fin_ack_u = s->fin_ack_u;
    o->fin_frame = s->fin_frame; o->fin_copies = s->fin_copies; o->ack_of_fin_frame = s->ack_of_fin_frame;
    o->fin_ts = s->fin_ts; o->last_fin_ts = s->last_fin_ts; o->ack_of_fin_ts = s->ack_of_fin_ts;
    o->rst_frame = s->rst_frame;
    for (int e = 0; e < 2; e++) {
        o->rst_cut_frame[e] = s->rst_cut_frame[e]; o->rst_cut_ts[e] = s->rst_cut_ts[e];
        o->rst_cut_facts[e] = s->rst_cut_facts[e];
    }
    o->kill_frame = s->kill_frame; o->kill_ts = s->kill_ts;
    o->nxt_u = s->nxt_u; o->max_ack_u = s->max_ack_u;
    o->last_tsval = s->known & LAST_TSVAL ? (int64_t)s->last_tsval : -1;
    o->data_after_peer_fin_frame = s->data_after_peer_fin_frame; o->data_after_peer_fin_ts = s->data_after_peer_fin_ts;
    o->head_len = s->head_len; o->first_flags = s->first_flags; o->syn_has_ack = s->syn_has_ack;
    o->new_data_after_fin = s->new_data_after_fin; o->resent_after_fin = s->resent_after_fin;
}

/* The record of `inc` as handed out, with the facts taken at that moment (they depend on the
 * whole record, which can change until then): the toward time of a lone SYN's sender, the bytes
 * the capture lost. */
static void row_of(Table *t, const Tuple *tp, const Inc *inc, int context, Row *row) {
    row->a_hi = tp->a_hi; row->a_lo = tp->a_lo; row->b_hi = tp->b_hi; row->b_lo = tp->b_lo;
    row->a_port = tp->a_port; row->b_port = tp->b_port; row->ctx = tp->ctx; row->tuple_uid = tp->uid;
    row->ip_version = inc->ip_version; row->index_in_tuple = inc->index_in_tuple;
    row->port_peers_a = inc->port_peers_a; row->port_peers_b = inc->port_peers_b;
    row->pure_syn_dir = inc->pure_syn_dir; row->synack_dir = inc->synack_dir;
    row->context = (uint8_t)context;
    row_dir(&inc->d[0], &row->d[0]);
    row_dir(&inc->d[1], &row->d[1]);
    fill_toward(t, tp, inc, row);
    settle_loss(t, inc, row);
}

#define F(type, name, kind, count) {#name, offsetof(type, name), kind, count}
typedef struct { const char *name; size_t offset; const char *kind; int count; } Field;

static const Field dir_fields[] = {
    F(RowDir, packets, "i8", 1), F(RowDir, bytes, "i8", 1), F(RowDir, first_frame, "i8", 1),
    F(RowDir, last_frame, "i8", 1), F(RowDir, first_seq, "i8", 1), F(RowDir, first_ts, "f8", 1),
    F(RowDir, last_ts, "f8", 1), F(RowDir, syn_frame, "i8", 1), F(RowDir, syn_seq, "i8", 1),
    F(RowDir, syn_tsval, "i8", 1), F(RowDir, syn_copies, "i8", 1), F(RowDir, syn_ts, "f8", 1),
    F(RowDir, acking_frame, "i8", 1), F(RowDir, cut_frame, "i8", 1), F(RowDir, fin_ack_u, "i8", 1),
    F(RowDir, toward_ts, "f8", 1), F(RowDir, fin_frame, "i8", 1), F(RowDir, fin_copies, "i8", 1),
    F(RowDir, ack_of_fin_frame, "i8", 1), F(RowDir, fin_ts, "f8", 1), F(RowDir, last_fin_ts, "f8", 1),
    F(RowDir, ack_of_fin_ts, "f8", 1), F(RowDir, rst_frame, "i8", 1), F(RowDir, rst_cut_frame, "i8", 2),
    F(RowDir, rst_cut_ts, "f8", 2), F(RowDir, kill_frame, "i8", 1), F(RowDir, kill_ts, "f8", 1),
    F(RowDir, nxt_u, "i8", 1), F(RowDir, max_ack_u, "i8", 1), F(RowDir, last_tsval, "i8", 1),
    F(RowDir, data_after_peer_fin_frame, "i8", 1), F(RowDir, data_after_peer_fin_ts, "f8", 1),
    F(RowDir, lost_bytes, "i8", 1), F(RowDir, gap_before_frame, "i8", 1), F(RowDir, gap_after_frame, "i8", 1),
    F(RowDir, head_len, "u2", 1), F(RowDir, first_flags, "u1", 1), F(RowDir, syn_has_ack, "u1", 1),
    F(RowDir, rst_cut_facts, "u1", 2), F(RowDir, new_data_after_fin, "u1", 1), F(RowDir, resent_after_fin, "u1", 1),
    {NULL, 0, NULL, 0},
};

static const Field inc_fields[] = {
    F(Row, a_hi, "u8", 1), F(Row, a_lo, "u8", 1), F(Row, b_hi, "u8", 1), F(Row, b_lo, "u8", 1),
    F(Row, a_port, "i8", 1), F(Row, b_port, "i8", 1), F(Row, ctx, "i8", 1), F(Row, ip_version, "i8", 1),
    F(Row, tuple_uid, "i8", 1), F(Row, index_in_tuple, "i8", 1), F(Row, port_peers_a, "i8", 1),
    F(Row, port_peers_b, "i8", 1), F(Row, pure_syn_dir, "i1", 1), F(Row, synack_dir, "i1", 1),
    F(Row, context, "u1", 1),
    {NULL, 0, NULL, 0},
};

static size_t field_bytes(const Field *f) { return (size_t)f->count * (size_t)(f->kind[1] - '0'); }

/* Bytes of a record without its heads (the head block's width varies: see scatter). */
static size_t row_bytes(void) {
    size_t row = 0;
    for (const Field *f = inc_fields; f->name; f++) row += field_bytes(f);
    for (const Field *f = dir_fields; f->name; f++) row += 2 * field_bytes(f);
    return row;
}

/* Head bytes per direction a slice needs for these incarnations: the longest head, in whole
 * 64-bit words (the host views hash heads word by word), at least one word. */
static int64_t head_width(int64_t width, const Inc *inc) {
    for (int d = 0; d < 2; d++) {
        int64_t w = (inc->d[d].head_len + 7) / 8 * 8;
        if (w > width) width = w;
    }
    return width;
}

/* Copy one record into the column blocks of `out` (k records): each field of the layout tables
 * is a contiguous block, record after record, per-direction fields with both directions; then
 * the heads, `width` bytes per direction (zero past head_len). */
static void scatter(const Table *t, const Inc *inc, const Row *row, uint8_t *out, int64_t k, int64_t i, int64_t width) {
    size_t block = 0;
    for (const Field *f = inc_fields; f->name; f++) {
        size_t b = field_bytes(f);
        memcpy(out + block + (size_t)i * b, (const uint8_t *)row + f->offset, b);
        block += (size_t)k * b;
    }
    for (const Field *f = dir_fields; f->name; f++) {
        size_t b = field_bytes(f);
        for (int d = 0; d < 2; d++)
            memcpy(out + block + ((size_t)i * 2 + d) * b, (const uint8_t *)&row->d[d] + f->offset, b);
        block += (size_t)k * 2 * b;
    }
    for (int d = 0; d < 2; d++) {
        uint8_t *head = out + block + ((size_t)i * 2 + d) * (size_t)width;
        size_t n = inc->d[d].head_len;
        if (n) memcpy(head, block_at(&t->heads, inc->d[d].head), n);
        memset(head + n, 0, (size_t)width - n);
    }
}

/* Settle the record of `inc` and copy it out as record i of k. */
static void put(Table *t, const Tuple *tp, const Inc *inc, int context, uint8_t *out, int64_t k, int64_t i,
                int64_t width) {
    Row row;
    row_of(t, tp, inc, context, &row);
    scatter(t, inc, &row, out, k, i, width);
}

/* ---- Python interface ------------------------------------------------------------------ */

static void table_free(PyObject *capsule) {
    Table *t = PyCapsule_GetPointer(capsule, "teardown.flow_table");
    if (!t) return;
    for (int64_t i = 0; i < t->cap_tuples; i++)
        if (t->tuples[i].live) free(t->tuples[i].frozen);
    free(t->tuples); free(t->incs); free(t->index); free(t->retired_key); free(t->retired_count);
    free(t->touched); free(t->toward); free(t->waiting);
    free_blocks(&t->heads);
    free_blocks(&t->gaps);
    free(t);
}

static Table *table_of(PyObject *capsule) { return PyCapsule_GetPointer(capsule, "teardown.flow_table"); }

/* new_table(idle_gap_s, closed_hold_s, open_hold_s, early_held) -> table */
static PyObject *new_table(PyObject *self, PyObject *args) {
    double idle, closed, open;
    long long early_held;
    if (!PyArg_ParseTuple(args, "dddL", &idle, &closed, &open, &early_held)) return NULL;
    Table *t = calloc(1, sizeof(Table));
    if (!t) return PyErr_NoMemory();
    t->free_tuple = t->free_inc = -1;
    t->idle_gap_s = idle; t->closed_hold_s = closed; t->open_hold_s = open; t->early_held = early_held;
    t->heads.size = HEAD_BYTES;
    t->gaps.size = sizeof(Gaps);
    if (rebuild_index(t, 0)) { free(t); return PyErr_NoMemory(); }
    PyObject *c = PyCapsule_New(t, "teardown.flow_table", table_free);
    if (!c) { free(t->index); free(t); }
    return c;
}

typedef struct { Py_buffer b; Py_ssize_t item; } Arg;

/* feed(table, data, frame, ts, ctx, ip_version, src_hi, src_lo, dst_hi, dst_lo, sport, dport,
 *      seq, ack, flags, window, payload, tsval, wscale, payload_at, payload_captured) -> None
 * Column arrays of one batch of TCP segments in capture order (decode.Packets); `data` holds
 * the batch's bytes, where payload_at/payload_captured locate each segment's payload. */
static PyObject *feed(PyObject *self, PyObject *args) {
    PyObject *cap;
    Arg a[20];
    static const Py_ssize_t items[20] = {1, 8, 8, 4, 1, 8, 8, 8, 8, 2, 2, 4, 4, 1, 2, 4, 8, 1, 8, 4};
    memset(a, 0, sizeof a);
    if (!PyArg_ParseTuple(args, "Oy*y*y*y*y*y*y*y*y*y*y*y*y*y*y*y*y*y*y*y*", &cap, &a[0].b, &a[1].b, &a[2].b,
                          &a[3].b, &a[4].b, &a[5].b, &a[6].b, &a[7].b, &a[8].b, &a[9].b, &a[10].b, &a[11].b,
                          &a[12].b, &a[13].b, &a[14].b, &a[15].b, &a[16].b, &a[17].b, &a[18].b, &a[19].b))
        return NULL;
    PyObject *result = NULL;
    Table *t = table_of(cap);
    Py_ssize_t n = a[1].b.len / 8;
    if (!t) goto done;
    for (int i = 1; i < 20; i++) {
        if (a[i].b.len != n * items[i]) {
            PyErr_Format(PyExc_ValueError, "feed: column %d has %zd bytes, expected %zd", i, a[i].b.len, n * items[i]);
            goto done;
        }
    }
    const uint8_t *data = a[0].b.buf;
    const int64_t *frame = a[1].b.buf, *tsval = a[16].b.buf, *payload_at = a[18].b.buf;
    const double *ts = a[2].b.buf;
    const uint32_t *ctx = a[3].b.buf, *seq = a[11].b.buf, *ackn = a[12].b.buf;
    const int32_t *payload = a[15].b.buf, *captured = a[19].b.buf;
    const uint8_t *ipv = a[4].b.buf, *flags = a[13].b.buf;
    const int8_t *wscale = a[17].b.buf;
    const uint64_t *sh = a[5].b.buf, *sl = a[6].b.buf, *dh = a[7].b.buf, *dl = a[8].b.buf;
    const uint16_t *sp = a[9].b.buf, *dp = a[10].b.buf, *win = a[14].b.buf;
    int failed = 0;
    /* Pure C from here on: other threads (a Dask worker's network) run meanwhile. A table is
     * only ever fed by one thread at a time. */
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        Seg g = {frame[i], ts[i], ctx[i], seq[i], ackn[i], ipv[i], flags[i], sh[i], sl[i], dh[i], dl[i],
                 sp[i], dp[i], win[i], payload[i], tsval[i], wscale[i], NULL, 0};
        int64_t at = payload_at[i], got = captured[i];
        if (at >= 0 && got > 0 && at + got <= a[0].b.len) { g.head = data + at; g.head_len = got; }
        if (feed_one(t, &g)) { failed = 1; break; }
    }
    Py_END_ALLOW_THREADS
    if (failed) { PyErr_NoMemory(); goto done; }
    result = Py_None;
    Py_INCREF(result);
done:
    for (int i = 0; i < 20; i++)
        if (a[i].b.obj) PyBuffer_Release(&a[i].b);
    return result;
}

/* A tuple may be forgotten once nothing can change its records: past the longest TIME_WAIT
 * and a new-incarnation gap after it closed, or past the keepalive horizon while open. A
 * frozen tuple holds quiet attempts only, which are closed. */
static int done_by(const Table *t, const Tuple *tp, double now) {
    int closed = 1;
    if (!tp->frozen) {
        const Inc *cur = &t->incs[tp->cur];
        closed = cur->closers_seen || syn_only(cur);
    }
    return tp->last_ts + (closed ? t->closed_hold_s : t->open_hold_s) < now;
}

/* How many incarnations of a tuple can be handed out now. All of them once the tuple is done.
 * Before that, when `early`, all but the last two: an incarnation's record is final once a
 * second one follows it (only the incarnation just before the current one can still see an
 * RST that assassinates its TIME_WAIT), and the one after it has shown its SYN and the answer
 * to it. So a tuple reused all day holds a few records, not a day of them. */
static int64_t ready(Table *t, const Tuple *tp, double now, int early, int *whole) {
    *whole = done_by(t, tp, now);
    if (!*whole && !early) return 0;
    int64_t length = 0, pending = -1;
    for (int64_t j = tp->first; j >= 0; j = t->incs[j].next) {
        /* Early, a lone SYN waits until the direction toward its sender is settled. */
        if (!*whole && pending < 0 && toward_pending(t, tp, &t->incs[j], now)) pending = length;
        length++;
    }
    if (*whole) return length;
    int64_t n = length >= 3 ? length - 2 : 0;
    return pending >= 0 && pending < n ? pending : n;
}

/* retire(table, now, limit, buffer) -> (records, bytes needed, head width): the incarnations
 * ready by `now` (every one when now is +inf), about `limit` of them, written into `buffer` and
 * removed from the table; call again until it returns none. When not even one tuple fits,
 * nothing is retired and the second value says how many bytes it needs. The caller reuses one
 * buffer: a fresh one per call cost a page fault per 4 kB, a tenth of the run. Each tuple's rows
 * come in order, with their neighbours as context records (`context` set): the copy kept of the
 * last one handed out before, and the one after when the tuple goes on. The bytes hold one block
 * per field (see scatter), so numpy reads each field as a contiguous array; taking a slice at a
 * time keeps that copy small next to the table. Frozen tuples are thawed when their hold ends. */
static PyObject *retire_into(PyObject *cap, double now, Py_ssize_t limit, uint8_t *dst, size_t room);

static PyObject *retire(PyObject *self, PyObject *args) {
    PyObject *cap;
    double now;
    Py_ssize_t limit;
    Py_buffer buf;
    if (!PyArg_ParseTuple(args, "Odnw*", &cap, &now, &limit, &buf)) return NULL;
    PyObject *result = retire_into(cap, now, limit, (uint8_t *)buf.buf, (size_t)buf.len);
    PyBuffer_Release(&buf);
    return result;
}

/* The widest head among the records a tuple's plan writes (all its incarnations held, and the
 * copy kept). */
static int64_t tuple_head_width(const Table *t, const Tuple *tp, int64_t width) {
    if (tp->kept >= 0) width = head_width(width, &t->incs[tp->kept]);
    for (int64_t j = tp->first; j >= 0; j = t->incs[j].next) width = head_width(width, &t->incs[j]);
    return width;
}

/* Give back the pools nothing is left in: all of them once the table is empty (the capture
 * ended: before the rows are judged), the incarnations' pool once every tuple left is frozen
 * (a flood's probes after the flood), the blocks once none is in use. */
static void give_back(Table *t) {
    if (!t->live) {
        free(t->tuples);
        t->tuples = NULL;
        t->cap_tuples = 0;
        t->free_tuple = -1;
        /* What waited for a retry names tuples that are gone: a later look would read the
         * freed array (a damaged capture whose every tuple retired mid-run did). */
        t->n_waiting = t->waiting_head = 0;
    }
    if (!t->held && t->cap_incs) {
        free(t->incs);
        t->incs = NULL;
        t->cap_incs = t->fresh_inc = 0;
        t->free_inc = -1;
    }
    if (!t->heads.used) free_blocks(&t->heads);
    if (!t->gaps.used) free_blocks(&t->gaps);
}

static PyObject *retire_into(PyObject *cap, double now, Py_ssize_t limit, uint8_t *dst, size_t room) {
    Table *t = table_of(cap);
    if (!t) return NULL;
    int64_t k = 0, width = 8;
    size_t row = row_bytes();
    /* Rows come out in table order; the analysis orders them by time. */
    int64_t n_plan = 0, *plan = malloc((size_t)(t->live + 1) * 2 * sizeof(int64_t));
    if (!plan) return PyErr_NoMemory();
    /* Hand out incarnations of tuples still going only when they crowd the table (each such
     * tuple also costs two context records), and before the pool must grow. */
    int early = t->held > t->early_held;
    /* As the capture ends, the tuples in the pool go first: the pool is then given back before
     * the frozen ones come back to it a slice at a time (see give_back). */
    int frozen_last = isinf(now) && t->live > t->frozen_tuples;
    for (int64_t i = 0; i < t->cap_tuples && k < limit; i++) {
        Tuple *tp = &t->tuples[i];
        int whole;
        if (!tp->live) continue;
        if (tp->frozen) {
            if (frozen_last || !done_by(t, tp, now)) continue;
            if (thaw(t, tp)) { free(plan); return PyErr_NoMemory(); }
        }
        int64_t rows = ready(t, tp, now, early, &whole);
        if (!rows) continue;
        int64_t records = rows + (tp->kept >= 0) + !whole;
        int64_t wider = tuple_head_width(t, tp, width);
        if ((size_t)(k + records) * (row + 2 * (size_t)wider) > room) {
            if (!n_plan) {
                free(plan);
                return Py_BuildValue("(LnL)", 0LL, (Py_ssize_t)((size_t)records * (row + 2 * (size_t)wider)), 0LL);
            }
            break; /* the rest next call */
        }
        width = wider;
        plan[2 * n_plan] = i;
        plan[2 * n_plan++ + 1] = whole ? -rows : rows;
        k += records;
    }
    int64_t written = 0, n_whole = 0;
    Py_BEGIN_ALLOW_THREADS /* copying the records out is pure C */
    for (int64_t x = 0; x < n_plan; x++) {
        int64_t i = plan[2 * x], rows = plan[2 * x + 1], whole = rows < 0;
        Tuple *tp = &t->tuples[i];
        rows = whole ? -rows : rows;
        if (tp->kept >= 0) {
            put(t, tp, &t->incs[tp->kept], 1, dst, k, written++, width);
            drop_inc(t, tp->kept, 1);
            tp->kept = -1;
        }
        int64_t j = tp->first;
        for (int64_t r = 0; r < rows; r++) {
            int64_t next = t->incs[j].next;
            put(t, tp, &t->incs[j], 0, dst, k, written++, width);
            if (r == rows - 1 && !whole) { t->incs[j].next = -1; tp->kept = (int32_t)j; }
            else drop_inc(t, j, 1);
            j = next;
        }
        if (!whole) {
            tp->first = (int32_t)j;
            put(t, tp, &t->incs[j], 1, dst, k, written++, width);
            continue;
        }
        int64_t *slot = retired_slot(t, tp->hash, 1);
        if (slot) *slot = tp->n_incs;
        tp->live = 0;
        tp->first = (int32_t)t->free_tuple;
        t->free_tuple = i;
        t->live--;
        n_whole++;
    }
    Py_END_ALLOW_THREADS
    free(plan);
    give_back(t);
    if (n_whole && rebuild_index(t, t->live)) return PyErr_NoMemory();
    return Py_BuildValue("(LnL)", (long long)k, (Py_ssize_t)0, (long long)width);
}

/* ---- live: provisional records ------------------------------------------------------- */

/* The teardown is over as far as the wire shows: both FINs sent and acknowledged, or an RST. */
static int teardown_done(const Inc *inc) {
    const Dir *a = &inc->d[0], *b = &inc->d[1];
    if (a->rst_frame != NONE || b->rst_frame != NONE) return 1;
    return a->fin_frame != NONE && b->fin_frame != NONE && a->ack_of_fin_frame != NONE &&
           b->ack_of_fin_frame != NONE;
}

/* track(table) -> None: from now on, remember which tuples get segments, for peek. */
static PyObject *track(PyObject *self, PyObject *args) {
    PyObject *cap;
    if (!PyArg_ParseTuple(args, "O", &cap)) return NULL;
    Table *t = table_of(cap);
    if (!t) return NULL;
    t->tracking = 1;
    Py_RETURN_NONE;
}

typedef struct { int64_t *at; int64_t n, cap; } Plan;

static int plan_add(Plan *p, int64_t tuple, int64_t slot, int64_t context) {
    if (p->n + 3 > p->cap) {
        int64_t cap = p->cap ? 2 * p->cap : 1024;
        int64_t *q = realloc(p->at, (size_t)cap * sizeof(int64_t));
        if (!q) return -1;
        p->at = q;
        p->cap = cap;
    }
    p->at[p->n++] = tuple;
    p->at[p->n++] = slot;
    p->at[p->n++] = context;
    return 0;
}

/* peek(table) -> (records, bytes, head width), in retire's format, without removing anything:
 * for each tuple that got segments since the last peek, the incarnations those segments can
 * have changed (see note_touched), as rows where their teardown is over, each with the
 * neighbours its verdicts read as context records (the one before it, held or the copy kept by
 * retire, and the one after it). Incarnations already handed out by retire are never rows here.
 * A touched tuple is never frozen (freezable), so its incarnations are all in the pool. */
static PyObject *peek(PyObject *self, PyObject *args) {
    PyObject *cap;
    if (!PyArg_ParseTuple(args, "O", &cap)) return NULL;
    Table *t = table_of(cap);
    if (!t) return NULL;
    size_t row = row_bytes();
    int64_t width = 8;
    Plan plan = {NULL, 0, 0};
    for (int64_t x = 0; x < t->n_touched; x++) {
        int64_t i = t->touched[x];
        if (i >= t->cap_tuples || !t->tuples[i].live || !t->tuples[i].touched) continue;
        Tuple *tp = &t->tuples[i];
        tp->touched = 0;
        /* prev: the slot before j (held, or the kept copy); is_row/prev_row: their verdicts. */
        int64_t prev = tp->kept, prev_row = 0, prev_added = 0;
        for (int64_t j = tp->first; j >= 0; j = t->incs[j].next) {
            const Inc *inc = &t->incs[j];
            int is_row = inc->index_in_tuple >= tp->peek_from && teardown_done(inc);
            if (is_row && prev >= 0 && !prev_added) {
                if (plan_add(&plan, i, prev, 1)) goto nomem;
                width = head_width(width, &t->incs[prev]);
            }
            if (is_row || prev_row) {
                if (plan_add(&plan, i, j, !is_row)) goto nomem;
                width = head_width(width, inc);
                prev_added = 1;
            } else {
                prev_added = 0;
            }
            prev = j;
            prev_row = is_row;
        }
    }
    t->n_touched = 0;
    int64_t k = plan.n / 3;
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)((size_t)k * (row + 2 * (size_t)width)));
    if (!out) { free(plan.at); return NULL; }
    uint8_t *dst = (uint8_t *)PyBytes_AS_STRING(out);
    for (int64_t r = 0; r < k; r++) {
        int64_t *at = &plan.at[3 * r];
        put(t, &t->tuples[at[0]], &t->incs[at[1]], (int)at[2], dst, k, r, width);
    }
    free(plan.at);
    return Py_BuildValue("(LNL)", (long long)k, out, (long long)width);
nomem:
    free(plan.at);
    return PyErr_NoMemory();
}

static PyObject *stats(PyObject *self, PyObject *args) {
    PyObject *cap;
    if (!PyArg_ParseTuple(args, "O", &cap)) return NULL;
    Table *t = table_of(cap);
    if (!t) return NULL;
    int64_t bytes = t->fresh_inc * (int64_t)sizeof(Inc) + t->cap_tuples * (int64_t)sizeof(Tuple) +
                    (t->index_mask + 1) * (int64_t)sizeof(int32_t) + (int64_t)t->heads.fresh * HEAD_BYTES +
                    (int64_t)t->gaps.fresh * (int64_t)sizeof(Gaps) + t->frozen_bytes;
    return Py_BuildValue("{s:L,s:L,s:L,s:L,s:L,s:L}", "live_tuples", (long long)t->live, "incarnation_slots",
                         (long long)t->cap_incs, "incarnations_held", (long long)t->held, "frozen_tuples",
                         (long long)t->frozen_tuples, "frozen_bytes", (long long)t->frozen_bytes, "bytes",
                         (long long)bytes);
}

static PyObject *field_list(const Field *f) {
    PyObject *out = PyList_New(0);
    for (; out && f->name; f++) {
        PyObject *item = Py_BuildValue("(ssi)", f->name, f->kind, f->count);
        if (!item || PyList_Append(out, item)) { Py_XDECREF(item); Py_DECREF(out); return NULL; }
        Py_DECREF(item);
    }
    return out;
}

/* layout() -> (incarnation fields, direction fields, head bytes, none): each field as (name,
 * numpy kind, values per record or direction), in the order of the column blocks. */
static PyObject *layout(PyObject *self, PyObject *args) {
    PyObject *inc = field_list(inc_fields), *dir = field_list(dir_fields);
    if (!inc || !dir) { Py_XDECREF(inc); Py_XDECREF(dir); return NULL; }
    return Py_BuildValue("(NNiL)", inc, dir, HEAD_BYTES, (long long)NONE);
}

/* held() -> (bytes of an incarnation held, bytes of a tuple): what one costs in the table. */
static PyObject *held(PyObject *self, PyObject *args) {
    return Py_BuildValue("(nn)", (Py_ssize_t)sizeof(Inc), (Py_ssize_t)sizeof(Tuple));
}

static PyMethodDef methods[] = {
    {"new_table", new_table, METH_VARARGS, "A new, empty flow table."},
    {"feed", feed, METH_VARARGS, "Add a batch of segments in capture order."},
    {"retire", retire, METH_VARARGS, "Records of the tuples done by `now`, removed from the table."},
    {"stats", stats, METH_VARARGS, "Live tuples and bytes held."},
    {"track", track, METH_VARARGS, "Remember which tuples get segments, for peek."},
    {"peek", peek, METH_VARARGS, "Records of finished teardowns changed since the last peek, kept in the table."},
    {"layout", layout, METH_NOARGS, "The record layout, to build the numpy dtype."},
    {"held", held, METH_NOARGS, "Bytes of an incarnation and of a tuple in the table."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_flows", "the flow table", -1, methods};

PyMODINIT_FUNC PyInit__flows(void) {
    blank_init();
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    /* The RstFact bits by name, for flows.RstFact. */
    if (PyModule_AddIntConstant(m, "RST_SENDER_SEEN", RST_SENDER_SEEN) ||
        PyModule_AddIntConstant(m, "RST_ACK_KNOWN", RST_ACK_KNOWN) ||
        PyModule_AddIntConstant(m, "RST_ANSWERS_ACK", RST_ANSWERS_ACK) ||
        PyModule_AddIntConstant(m, "RST_ZERO_ACK", RST_ZERO_ACK) ||
        PyModule_AddIntConstant(m, "RST_EXACT", RST_EXACT) ||
        PyModule_AddIntConstant(m, "RST_IN_WINDOW", RST_IN_WINDOW)) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

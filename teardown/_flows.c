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
 * receiver had seen" (an RST's class) are taken at the moment the segment passes, which is
 * the only moment they are known. Every fact is a function of the segments so far, never of
 * where a chunk ended: feeding a capture in any pieces gives the same records.
 *
 * Python sees a record through a numpy dtype built from the field table below (flows.py);
 * offsets come from offsetof, so the two can never disagree.
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

/* Sequence numbers [lo, hi) of a direction that the capture skipped: a segment came from beyond
 * them. `before_frame` reached up to lo, `after_frame` started at hi (frames around the gap). */
typedef struct { int64_t lo, hi, before_frame, after_frame; } Hole;

enum { RST_NONE = 0, RST_EXACT, RST_IN_WINDOW, RST_OUT_OF_WINDOW, RST_TO_CLOSED_PORT, RST_UNVERIFIABLE };

typedef struct {
    int64_t packets, bytes, nonrst_packets;
    int64_t first_frame, last_frame, first_flags;
    int64_t first_seq; /* raw: copies of a connection at two points share it (copies.py) */
    double first_ts, last_ts;
    /* first segment with SYN: the handshake */
    int64_t syn_frame, syn_seq, syn_tsval, syn_wscale, syn_has_ack;
    double syn_ts;
    /* pure SYNs with the first SYN's ISN (1: sent once; more: retransmitted, so unanswered) */
    int64_t syn_copies;
    /* first segment (not an RST) that acknowledges something (ack != 0) or carries data after
     * the SYN: a SYN followed by one was answered, whether or not the capture shows the answer */
    int64_t acking_frame;
    /* the acknowledgment number (unwrapped) of the first FIN: an ACK above it afterwards
     * acknowledges something the peer sent after this FIN (its FIN, when it is unseen) */
    int64_t fin_ack_u;
    /* first segment the capture shows toward this direction's sender's address, on any
     * connection, up to the hold after this incarnation's end (filled when handed out, for
     * the sender of a lone SYN, perhaps followed by its own RST, only: NaN otherwise) */
    double toward_ts;
    /* first pure ACK after the peer's SYN: the handshake's third segment when sent by the client */
    int64_t cut_frame;
    /* first FIN, its sequence number (unwrapped), copies with that sequence number */
    int64_t fin_frame, fin_seq_u, fin_copies;
    double fin_ts, last_fin_ts;
    /* first segment acknowledging the peer's FIN */
    int64_t ack_of_fin_frame;
    double ack_of_fin_ts;
    /* first RST, and first RST after each direction's handshake cut (index: that direction) */
    int64_t rst_frame, rst_class;
    double rst_ts;
    int64_t rst_cut_frame[2], rst_cut_class[2];
    double rst_cut_ts[2];
    /* first RST from this direction carrying this direction's FIN + 1, here or in the next
     * incarnation, at or after the peer's TIME_WAIT began: an assassination candidate */
    int64_t kill_frame;
    double kill_ts;
    int64_t nxt_u, max_ack_u, max_ack_frame;
    double max_ack_ts;
    /* Capture loss (docs/rules.md "Honesty about the capture point"): what the capture showed of
     * this direction's sequence space, RSTs' sequence numbers included (gap_nxt_u, and the frame
     * that reached it); how many gaps in it are followed (holes, below), and beyond HOLES gaps
     * at once their bytes (spill), conservatively lowered by later segments landing in their
     * span [spill_lo_u, spill_hi_u). Set as the record is handed out (settle_loss): bytes of
     * this direction the peer acknowledged and the capture never showed, and the frames around
     * the first gap. Next to nxt_u: every segment reads them. */
    int64_t gap_nxt_u, gap_nxt_frame, n_holes, spill_bytes;
    int64_t lost_bytes, gap_before_frame, gap_after_frame;
    int64_t last_tsval;
    int64_t data_after_peer_fin_frame, new_data_after_fin, resent_after_fin;
    double data_after_peer_fin_ts;
    /* unwrapping references: the last non-RST segment's raw and unwrapped numbers */
    int64_t has_seq, seq_raw, seq_u, has_ack, ack_raw, ack_u, last_window;
    int64_t head_start_u, head_len;
    int64_t spill_lo_u, spill_hi_u; /* rarely read: after the hot facts */
    Hole holes[HOLES];
    uint8_t head[HEAD_BYTES];
} Dir;

typedef struct {
    uint64_t a_hi, a_lo, b_hi, b_lo;
    int64_t a_port, b_port, ctx, ip_version;
    int64_t tuple_uid, index_in_tuple, closers_seen;
    int64_t pure_syn_frame, pure_syn_dir, synack_frame, synack_dir;
    int64_t port_peers_a, port_peers_b; /* distinct tuples seen so far with each port: roles */
    int64_t next;                       /* next incarnation of the tuple in the pool, -1 */
    int64_t context;                    /* handed out only to judge its neighbours (retire) */
    Dir d[2];
} Inc;

typedef struct {
    uint64_t a_hi, a_lo, b_hi, b_lo, hash;
    uint32_t ctx;
    uint16_t a_port, b_port;
    int64_t first, cur, prev; /* incarnations in the pool */
    int64_t uid, n_incs;
    int64_t kept; /* copy of the last incarnation handed out early: its successor's context */
    double last_ts;
    int live;
    int touched;       /* in Table.touched since the last peek (live) */
    int64_t peek_from; /* when touched: the first index_in_tuple the segments since may change */
    int toward_noted;  /* noted in Table.toward: bit d a segment toward endpoint d, bit 2+d an
                        * acknowledging segment from endpoint d */
} Tuple;

/* An address segments were sent to (from any address: pair 0), or a host pair (pair 1: from
 * address `from_*` to address `hi/lo`). */
typedef struct {
    uint64_t hi, lo, from_hi, from_lo, key; /* key: hash of the rest | 1; 0 marks an empty slot */
    uint32_t ctx, pair;
    double first_ts;  /* first segment toward it */
    double acking_ts; /* pairs: first of them acknowledging something (not an RST, ack != 0) */
} Addr;

typedef struct {
    Tuple *tuples;
    int64_t n_tuples, cap_tuples, free_tuple; /* free list through Tuple.first */
    Inc *incs;
    int64_t cap_incs, free_inc; /* free list through Inc.next */
    int64_t *index;             /* hash slot -> tuple, -1 empty */
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
    double idle_gap_s, closed_hold_s, open_hold_s;
    /* Live: tuples that got segments since the last peek (only once track() was called). */
    int tracking;
    int64_t *touched, n_touched, cap_touched;
} Table;

static inline int64_t sdiff(uint32_t a, uint32_t b) { return (int64_t)(int32_t)(a - b); }

static inline uint64_t mix(uint64_t h, uint64_t v) {
    uint64_t x = (h ^ v) * UINT64_C(0x9E3779B97F4A7C15);
    x ^= x >> 31;
    x *= UINT64_C(0xBF58476D1CE4E5B9);
    x ^= x >> 29;
    return x;
}

static void dir_init(Dir *s) {
    memset(s, 0, offsetof(Dir, head));
    s->first_frame = s->last_frame = s->syn_frame = s->cut_frame = s->fin_frame = s->acking_frame = NONE;
    s->fin_ack_u = NONE;
    s->ack_of_fin_frame = s->rst_frame = s->kill_frame = s->max_ack_frame = NONE;
    s->rst_cut_frame[0] = s->rst_cut_frame[1] = s->data_after_peer_fin_frame = NONE;
    s->fin_seq_u = s->nxt_u = s->max_ack_u = s->head_start_u = s->first_seq = NONE;
    s->gap_nxt_u = s->gap_nxt_frame = s->spill_lo_u = s->spill_hi_u = NONE;
    s->gap_before_frame = s->gap_after_frame = NONE;
    s->syn_seq = s->syn_tsval = s->syn_wscale = s->last_tsval = -1;
    s->first_ts = s->last_ts = s->syn_ts = s->fin_ts = s->last_fin_ts = NAN;
    s->ack_of_fin_ts = s->rst_ts = s->rst_cut_ts[0] = s->rst_cut_ts[1] = NAN;
    s->kill_ts = s->max_ack_ts = s->data_after_peer_fin_ts = s->toward_ts = NAN;
}

/* ---- storage ---------------------------------------------------------------------------- */

static int64_t new_inc(Table *t) {
    if (t->free_inc < 0) {
        int64_t old = t->cap_incs, cap = old ? old * 2 : 1024;
        Inc *p = realloc(t->incs, (size_t)cap * sizeof(Inc));
        if (!p) return -1;
        t->incs = p;
        t->cap_incs = cap;
        for (int64_t i = cap - 1; i >= old; i--) { t->incs[i].next = t->free_inc; t->free_inc = i; }
    }
    int64_t i = t->free_inc;
    t->free_inc = t->incs[i].next;
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
        for (int64_t i = cap - 1; i >= old; i--) { t->tuples[i].live = 0; t->tuples[i].first = t->free_tuple; t->free_tuple = i; }
    }
    int64_t i = t->free_tuple;
    t->free_tuple = t->tuples[i].first;
    return i;
}

/* Rebuild the hash index for the live tuples, sized to keep it at most half full. */
static int rebuild_index(Table *t, int64_t want_live) {
    int64_t size = 1024;
    while (size < 2 * want_live + 2) size *= 2;
    if (size - 1 != t->index_mask) {
        int64_t *p = realloc(t->index, (size_t)size * sizeof(int64_t));
        if (!p) return -1;
        t->index = p;
        t->index_mask = size - 1;
    }
    memset(t->index, 0xff, (size_t)size * sizeof(int64_t));
    for (int64_t i = 0; i < t->cap_tuples; i++) {
        if (!t->tuples[i].live) continue;
        int64_t s = (int64_t)(t->tuples[i].hash & (uint64_t)t->index_mask);
        while (t->index[s] >= 0) s = (s + 1) & t->index_mask;
        t->index[s] = i;
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
static const Addr *toward_of(Table *t, const Inc *inc, int e, uint32_t pair) {
    return toward_slot(t, (uint32_t)inc->ctx, e ? inc->b_hi : inc->a_hi, e ? inc->b_lo : inc->a_lo, pair,
                       e ? inc->a_hi : inc->b_hi, e ? inc->a_lo : inc->b_lo, 0);
}

/* When the capture first shows, on any connection, a segment toward the sender `e` of a lone
 * SYN, as far as it tells the direction toward it is captured, INFINITY when it does not. From
 * the SYN's target host: the direction is captured. Else, when the host pair holds connections
 * whose segments toward the target acknowledge what never came back (one-sided): it is not.
 * Else, from any host (a scan of hosts that are down). */
static double toward_first(Table *t, const Inc *inc, int e) {
    const Addr *back = toward_of(t, inc, e, 1), *out = toward_of(t, inc, 1 - e, 1), *any = toward_of(t, inc, e, 0);
    double bound = toward_bound(t, inc);
    if (back && back->first_ts <= bound) return back->first_ts;
    if (out && out->acking_ts <= bound) return INFINITY;
    return any ? any->first_ts : INFINITY;
}

/* Fill toward_ts before a record is handed out: for the sender of a lone SYN (syn_attempt), the
 * only one whose verdict reads it (a lookup per record costs more than every other fact). */
static int syn_only(const Inc *inc);
static int syn_attempt(const Inc *inc);
static void fill_toward(Table *t, Inc *inc) {
    if (!syn_attempt(inc)) return;
    int e = (int)inc->pure_syn_dir;
    double first = toward_first(t, inc, e), bound = toward_bound(t, inc);
    inc->d[e].toward_ts = first <= bound ? first : NAN;
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
static int toward_pending(Table *t, const Inc *inc, double now) {
    if (!syn_attempt(inc) || inc->d[inc->pure_syn_dir].syn_copies != 1) return 0;
    double bound = toward_bound(t, inc);
    const Addr *back = toward_of(t, inc, (int)inc->pure_syn_dir, 1);
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

/* What the receiver could accept from this RST (docs/rules.md "RST classes"), from the state
 * both directions had reached before it. */
static int64_t rst_class(const Inc *inc, const Dir *s, const Dir *r, const Seg *g, int64_t seq_u) {
    int sent_before = s->nonrst_packets > 0, rcv_known = r->has_ack != 0;
    int64_t expected = s->nxt_u;
    int answers_ack = rcv_known && (int64_t)g->seq == r->ack_raw;
    int zero_ack = g->seq == 0 && (g->flags & ACK);
    int exact = (expected != NONE && seq_u == expected) || (rcv_known && seq_u == r->ack_u);
    int64_t scale = inc->d[0].syn_wscale >= 0 && inc->d[1].syn_wscale >= 0 ? r->syn_wscale : 0;
    int64_t window = r->last_window << scale;
    int64_t ahead = rcv_known ? sdiff(g->seq, (uint32_t)r->ack_raw) : 0;
    int in_window = rcv_known && ahead > 0 && ahead < window;
    if (!sent_before && (answers_ack || zero_ack)) return RST_TO_CLOSED_PORT;
    if (!sent_before && !rcv_known) return RST_UNVERIFIABLE;
    if (exact) return RST_EXACT;
    if (in_window) return RST_IN_WINDOW;
    if (rcv_known || expected != NONE) return RST_OUT_OF_WINDOW;
    return RST_UNVERIFIABLE;
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
static void keep_hole(Dir *s, Hole h) {
    if (h.hi <= h.lo) return;
    if (s->n_holes < HOLES) { s->holes[s->n_holes++] = h; return; }
    s->spill_bytes += h.hi - h.lo;
    if (s->spill_lo_u == NONE || h.lo < s->spill_lo_u) s->spill_lo_u = h.lo;
    if (h.hi > s->spill_hi_u) s->spill_hi_u = h.hi;
}

/* A segment [seq, end) below what the capture showed before: it fills the part of any gap it
 * covers (the capture saw a retransmission; a copy of bytes seen before fills nothing). */
static void fill_holes(Dir *s, int64_t seq, int64_t end, int64_t frame) {
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

/* Where a segment of S lies against what the capture showed of S so far: beyond it, a gap opens
 * [gap_nxt, seq) (an RST's sequence number counts, though it occupies none); below it, it may
 * fill a gap. A keep-alive or window probe (seq = next - 1) lies below and fills nothing. */
static inline void note_gap(Dir *s, int64_t seq, int64_t end, int64_t frame, int rst) {
    if (s->gap_nxt_u == NONE) {
        if (rst) return; /* an RST as a side's first segment: where its stream lies is unknown */
    } else if (seq > s->gap_nxt_u) {
        keep_hole(s, (Hole){s->gap_nxt_u, seq, s->gap_nxt_frame, frame});
    } else if ((s->n_holes | s->spill_bytes) && end > seq) {
        fill_holes(s, seq, end, frame);
    }
    /* The frame before a gap is the last segment reaching its start (a pure ACK after the data
     * too), never an RST that only lies there. */
    if (end > s->gap_nxt_u || (end == s->gap_nxt_u && !rst)) { s->gap_nxt_u = end; s->gap_nxt_frame = frame; }
}

/* The bytes of S the peer acknowledged that the capture never showed, as the record is handed
 * out: gaps below both the peer's highest ACK and S's next sequence number, and the tail
 * acknowledged beyond that next sequence number; the frames around the first gap the peer
 * acknowledged (for the tail alone: the frame that reached S's last byte seen). */
static void settle_loss(Inc *inc) {
    for (int d = 0; d < 2; d++) {
        Dir *s = &inc->d[d];
        int64_t ack = inc->d[1 - d].max_ack_u;
        s->lost_bytes = 0;
        s->gap_before_frame = s->gap_after_frame = NONE;
        if (s->nxt_u == NONE || ack == NONE) continue;
        int64_t bound = ack < s->nxt_u ? ack : s->nxt_u, lost = ack > s->nxt_u ? ack - s->nxt_u : 0;
        const Hole *first = NULL;
        for (int64_t i = 0; i < s->n_holes; i++) {
            const Hole *h = &s->holes[i];
            if (h->lo < bound) lost += (h->hi < bound ? h->hi : bound) - h->lo;
            if (h->lo < ack && (!first || h->lo < first->lo)) first = h;
        }
        if (s->spill_bytes && s->spill_lo_u < bound)
            lost += s->spill_bytes < bound - s->spill_lo_u ? s->spill_bytes : bound - s->spill_lo_u;
        s->lost_bytes = lost;
        if (!lost) continue;
        s->gap_before_frame = first ? first->before_frame : s->gap_nxt_frame;
        s->gap_after_frame = first ? first->after_frame : NONE;
    }
}

/* The facts taken as a record is handed out: they depend on the whole record, which can change
 * until then (the toward time of a lone SYN's sender, the bytes the capture lost). */
static void settle(Table *t, Inc *inc) {
    fill_toward(t, inc);
    settle_loss(inc);
}

static void add_segment(Table *t, Tuple *tp, Inc *inc, int d, const Seg *g) {
    Dir *s = &inc->d[d], *r = &inc->d[1 - d];
    int syn = g->flags & SYN, fin = g->flags & FIN, rst = g->flags & RST, ack = g->flags & ACK;
    int64_t pl = g->payload;

    int64_t seq_u = s->has_seq ? s->seq_u + sdiff(g->seq, (uint32_t)s->seq_raw)
                  : r->has_ack ? r->ack_u + sdiff(g->seq, (uint32_t)r->ack_raw) : (int64_t)g->seq;
    int64_t ack_u = NONE;
    if (ack)
        ack_u = r->has_seq ? r->seq_u + sdiff(g->ack, (uint32_t)r->seq_raw)
              : s->has_ack ? s->ack_u + sdiff(g->ack, (uint32_t)s->ack_raw) : (int64_t)g->ack;

    if (rst) {
        int64_t cls = rst_class(inc, s, r, g, seq_u);
        if (s->rst_frame == NONE) { s->rst_frame = g->frame; s->rst_ts = g->ts; s->rst_class = cls; }
        for (int e = 0; e < 2; e++)
            if (s->rst_cut_frame[e] == NONE) { s->rst_cut_frame[e] = g->frame; s->rst_cut_ts[e] = g->ts; s->rst_cut_class[e] = cls; }
        note_kill(inc, d, g);
        if (tp->prev >= 0) note_kill(&t->incs[tp->prev], d, g);
        note_gap(s, seq_u, seq_u, g->frame, 1);
        inc->closers_seen = 1;
    }
    if (syn) {
        if (s->syn_frame == NONE) {
            s->syn_frame = g->frame; s->syn_ts = g->ts; s->syn_seq = g->seq;
            s->syn_tsval = g->tsval; s->syn_wscale = g->wscale; s->syn_has_ack = ack != 0;
        }
        if (!ack && (int64_t)g->seq == s->syn_seq) s->syn_copies++;
        if (!ack && inc->pure_syn_frame == NONE) { inc->pure_syn_frame = g->frame; inc->pure_syn_dir = d; }
        if (ack && inc->synack_frame == NONE) { inc->synack_frame = g->frame; inc->synack_dir = d; }
    }
    if ((g->flags & (ACK | SYN | RST)) == ACK && r->syn_frame != NONE && s->cut_frame == NONE) {
        /* RSTs before the handshake's third segment belong to the handshake (docs/rules.md
         * §Close verdicts 4): forget them for the hypothesis "d is the client". */
        s->cut_frame = g->frame;
        inc->d[0].rst_cut_frame[d] = inc->d[1].rst_cut_frame[d] = NONE;
        inc->d[0].rst_cut_ts[d] = inc->d[1].rst_cut_ts[d] = NAN;
        inc->d[0].rst_cut_class[d] = inc->d[1].rst_cut_class[d] = RST_NONE;
    }
    if (pl > 0) {
        if (r->fin_frame != NONE) { s->data_after_peer_fin_frame = g->frame; s->data_after_peer_fin_ts = g->ts; }
        if (s->fin_frame != NONE) {
            if (seq_u + pl > s->fin_seq_u) s->new_data_after_fin = 1;
            else s->resent_after_fin = 1;
        }
        if (s->head_start_u == NONE && !rst) s->head_start_u = seq_u;
        if (s->head_start_u != NONE && seq_u == s->head_start_u + s->head_len && s->head_len < HEAD_BYTES) {
            int64_t n = g->head_len < HEAD_BYTES - s->head_len ? g->head_len : HEAD_BYTES - s->head_len;
            if (n > 0) { memcpy(s->head + s->head_len, g->head, (size_t)n); s->head_len += n; }
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
        if (syn && s->syn_frame == g->frame) {
            /* The side's first SYN starts its sequence space: what it sent before on the tuple (an
             * ACK of the old connection, answering a reused 4-tuple in TIME_WAIT) leaves no gap. */
            s->gap_nxt_u = NONE;
            s->n_holes = s->spill_bytes = 0;
        }
        note_gap(s, seq_u, end, g->frame, 0);
        if (s->acking_frame == NONE && ((ack && g->ack != 0) || (pl > 0 && !syn))) s->acking_frame = g->frame;
        if (end > s->nxt_u) s->nxt_u = end;
        s->nonrst_packets++;
        s->has_seq = 1; s->seq_raw = g->seq; s->seq_u = seq_u;
        if (ack) {
            if (ack_u > s->max_ack_u) { s->max_ack_u = ack_u; s->max_ack_frame = g->frame; s->max_ack_ts = g->ts; }
            s->has_ack = 1; s->ack_raw = g->ack; s->ack_u = ack_u; s->last_window = g->window;
        }
    }
    if (s->first_frame == NONE) {
        s->first_frame = g->frame; s->first_ts = g->ts; s->first_flags = g->flags; s->first_seq = g->seq;
    }
    s->last_frame = g->frame;
    s->last_ts = g->ts;
    s->last_tsval = g->tsval;
    s->packets++;
    s->bytes += pl;
    inc->port_peers_a = t->port_peers[inc->a_port];
    inc->port_peers_b = t->port_peers[inc->b_port];
}

static int64_t start_incarnation(Table *t, Tuple *tp) {
    int64_t i = new_inc(t);
    if (i < 0) return -1;
    Inc *inc = &t->incs[i];
    memset(inc, 0, offsetof(Inc, d));
    inc->a_hi = tp->a_hi; inc->a_lo = tp->a_lo; inc->b_hi = tp->b_hi; inc->b_lo = tp->b_lo;
    inc->a_port = tp->a_port; inc->b_port = tp->b_port; inc->ctx = tp->ctx;
    inc->tuple_uid = tp->uid;
    inc->index_in_tuple = tp->n_incs++;
    inc->pure_syn_frame = inc->synack_frame = NONE;
    inc->pure_syn_dir = inc->synack_dir = -1;
    inc->next = -1;
    dir_init(&inc->d[0]);
    dir_init(&inc->d[1]);
    if (tp->cur >= 0) t->incs[tp->cur].next = i;
    else tp->first = i;
    tp->prev = tp->cur;
    tp->cur = i;
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
    t->index[s] = i;
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

static int feed_one(Table *t, const Seg *g) {
    int d;
    Tuple *tp = find_tuple(t, g, &d);
    if (!tp) return -1;
    int pure_syn = (g->flags & (SYN | ACK)) == SYN;
    int start = tp->cur < 0;
    if (!start && pure_syn) {
        /* A SYN whose ISN differs from the current incarnation's opens a new incarnation once
         * the current one closed or aborted, or after an idle gap of 2*MSL (docs/rules.md
         * §Vocabulary); the same ISN again is a retransmission. A SYN that met the open
         * connection (a challenge ACK answered it) opens one when it comes again after the RST. */
        Inc *cur = &t->incs[tp->cur];
        int new_isn = cur->d[d].syn_frame == NONE || (int64_t)g->seq != cur->d[d].syn_seq;
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
        tp->toward_noted |= 1 << (1 - d) | (acking ? 1 << (2 + d) : 0);
    }
    if (start && start_incarnation(t, tp) < 0) return -1;
    if (t->tracking && note_touched(t, tp)) return -1; /* after: the segment's incarnation is known */
    Inc *inc = &t->incs[tp->cur];
    if (inc->ip_version == 0) inc->ip_version = g->ip_version;
    add_segment(t, tp, inc, d, g);
    tp->last_ts = g->ts;
    return 0;
}

/* ---- Python interface ------------------------------------------------------------------ */

static void table_free(PyObject *capsule) {
    Table *t = PyCapsule_GetPointer(capsule, "teardown.flow_table");
    if (!t) return;
    free(t->tuples); free(t->incs); free(t->index); free(t->retired_key); free(t->retired_count);
    free(t->touched); free(t->toward);
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

/* ---- the record layout, for numpy -------------------------------------------------------- */

#define F(type, name, kind, count) {#name, offsetof(type, name), kind, count}
typedef struct { const char *name; size_t offset; const char *kind; int count; } Field;

static const Field dir_fields[] = {
    F(Dir, packets, "i8", 1), F(Dir, bytes, "i8", 1), F(Dir, nonrst_packets, "i8", 1),
    F(Dir, first_frame, "i8", 1), F(Dir, last_frame, "i8", 1), F(Dir, first_flags, "i8", 1), F(Dir, first_seq, "i8", 1),
    F(Dir, first_ts, "f8", 1), F(Dir, last_ts, "f8", 1),
    F(Dir, syn_frame, "i8", 1), F(Dir, syn_seq, "i8", 1), F(Dir, syn_tsval, "i8", 1), F(Dir, syn_wscale, "i8", 1),
    F(Dir, syn_has_ack, "i8", 1), F(Dir, syn_ts, "f8", 1), F(Dir, syn_copies, "i8", 1),
    F(Dir, acking_frame, "i8", 1), F(Dir, fin_ack_u, "i8", 1),
    F(Dir, toward_ts, "f8", 1), F(Dir, cut_frame, "i8", 1),
    F(Dir, fin_frame, "i8", 1), F(Dir, fin_seq_u, "i8", 1), F(Dir, fin_copies, "i8", 1),
    F(Dir, fin_ts, "f8", 1), F(Dir, last_fin_ts, "f8", 1),
    F(Dir, ack_of_fin_frame, "i8", 1), F(Dir, ack_of_fin_ts, "f8", 1),
    F(Dir, rst_frame, "i8", 1), F(Dir, rst_class, "i8", 1), F(Dir, rst_ts, "f8", 1),
    F(Dir, rst_cut_frame, "i8", 2), F(Dir, rst_cut_class, "i8", 2), F(Dir, rst_cut_ts, "f8", 2),
    F(Dir, kill_frame, "i8", 1), F(Dir, kill_ts, "f8", 1),
    F(Dir, nxt_u, "i8", 1), F(Dir, max_ack_u, "i8", 1), F(Dir, max_ack_frame, "i8", 1), F(Dir, max_ack_ts, "f8", 1),
    F(Dir, last_tsval, "i8", 1), F(Dir, data_after_peer_fin_frame, "i8", 1), F(Dir, new_data_after_fin, "i8", 1),
    F(Dir, resent_after_fin, "i8", 1), F(Dir, data_after_peer_fin_ts, "f8", 1),
    F(Dir, lost_bytes, "i8", 1), F(Dir, gap_before_frame, "i8", 1), F(Dir, gap_after_frame, "i8", 1),
    F(Dir, head_len, "i8", 1), F(Dir, head, "u1", HEAD_BYTES),
    {NULL, 0, NULL, 0},
};

static const Field inc_fields[] = {
    F(Inc, a_hi, "u8", 1), F(Inc, a_lo, "u8", 1), F(Inc, b_hi, "u8", 1), F(Inc, b_lo, "u8", 1),
    F(Inc, a_port, "i8", 1), F(Inc, b_port, "i8", 1), F(Inc, ctx, "i8", 1), F(Inc, ip_version, "i8", 1),
    F(Inc, tuple_uid, "i8", 1), F(Inc, index_in_tuple, "i8", 1), F(Inc, closers_seen, "i8", 1),
    F(Inc, pure_syn_frame, "i8", 1), F(Inc, pure_syn_dir, "i8", 1), F(Inc, synack_frame, "i8", 1),
    F(Inc, synack_dir, "i8", 1), F(Inc, port_peers_a, "i8", 1), F(Inc, port_peers_b, "i8", 1),
    F(Inc, context, "i8", 1),
    {NULL, 0, NULL, 0},
};

/* A tuple may be forgotten once nothing can change its records: past the longest TIME_WAIT
 * and a new-incarnation gap after it closed, or past the keepalive horizon while open. */
static int done_by(const Table *t, const Tuple *tp, double now) {
    const Inc *cur = &t->incs[tp->cur];
    int closed = cur->closers_seen || syn_only(cur);
    return tp->last_ts + (closed ? t->closed_hold_s : t->open_hold_s) < now;
}

static size_t field_bytes(const Field *f) { return (size_t)f->count * (f->kind[1] == '8' ? 8 : 1); }

static inline void copy_field(uint8_t *dst, const uint8_t *src, size_t b) {
    if (b == 8) memcpy(dst, src, 8); /* nearly every field: one load and one store */
    else memcpy(dst, src, b);
}

/* Copy one record into the column blocks of `out` (k records): each field of the layout tables
 * is a contiguous block, record after record, per-direction fields with both directions. */
static void scatter(const Inc *inc, uint8_t *out, int64_t k, int64_t i) {
    size_t block = 0;
    for (const Field *f = inc_fields; f->name; f++) {
        size_t b = field_bytes(f);
        copy_field(out + block + (size_t)i * b, (const uint8_t *)inc + f->offset, b);
        block += (size_t)k * b;
    }
    for (const Field *f = dir_fields; f->name; f++) {
        size_t b = field_bytes(f);
        for (int d = 0; d < 2; d++)
            copy_field(out + block + ((size_t)i * 2 + d) * b, (const uint8_t *)&inc->d[d] + f->offset, b);
        block += (size_t)k * 2 * b;
    }
}

static void free_inc(Table *t, int64_t j) {
    t->incs[j].next = t->free_inc;
    t->free_inc = j;
    t->held--;
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
        if (!*whole && pending < 0 && toward_pending(t, &t->incs[j], now)) pending = length;
        length++;
    }
    if (*whole) return length;
    int64_t n = length >= 3 ? length - 2 : 0;
    return pending >= 0 && pending < n ? pending : n;
}

/* retire(table, now, limit, buffer) -> (records, bytes needed): the incarnations ready by `now`
 * (every one when now is +inf), about `limit` of them, written into `buffer` and removed from
 * the table; call again until it returns none. When not even one tuple fits, nothing is
 * retired and the second value says how many bytes it needs. The caller reuses one buffer:
 * a fresh one per call cost a page fault per 4 kB, a tenth of the run. Each tuple's rows come in order, with their neighbours as context records (`context`
 * set): the copy kept of the last one handed out before, and the one after when the tuple
 * goes on. The bytes hold one block per field (see scatter), so numpy reads each field as a
 * contiguous array; taking a slice at a time keeps that copy small next to the table. */
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

static PyObject *retire_into(PyObject *cap, double now, Py_ssize_t limit, uint8_t *dst, size_t room) {
    Table *t = table_of(cap);
    if (!t) return NULL;
    int64_t k = 0;
    size_t row = 0;
    for (const Field *f = inc_fields; f->name; f++) row += field_bytes(f);
    for (const Field *f = dir_fields; f->name; f++) row += 2 * field_bytes(f);
    /* Rows come out in table order; the analysis orders them by time. */
    int64_t n_plan = 0, *plan = malloc((size_t)(t->live + 1) * 2 * sizeof(int64_t));
    if (!plan) return PyErr_NoMemory();
    /* Hand out incarnations of tuples still going only when they crowd the table (each such
     * tuple also costs two context records), and before the pool must grow. */
    int early = t->held > t->early_held;
    for (int64_t i = 0; i < t->cap_tuples && k < limit; i++) {
        Tuple *tp = &t->tuples[i];
        int whole;
        if (!tp->live) continue;
        int64_t rows = ready(t, tp, now, early, &whole);
        if (!rows) continue;
        int64_t records = rows + (tp->kept >= 0) + !whole;
        if ((size_t)(k + records) * row > room) {
            if (!n_plan) { free(plan); return Py_BuildValue("(Ln)", 0LL, (Py_ssize_t)((size_t)records * row)); }
            break; /* the rest next call */
        }
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
            t->incs[tp->kept].context = 1;
            settle(t, &t->incs[tp->kept]);
            scatter(&t->incs[tp->kept], dst, k, written++);
            free_inc(t, tp->kept);
            tp->kept = -1;
        }
        int64_t j = tp->first;
        for (int64_t r = 0; r < rows; r++) {
            int64_t next = t->incs[j].next;
            settle(t, &t->incs[j]);
            scatter(&t->incs[j], dst, k, written++);
            if (r == rows - 1 && !whole) { t->incs[j].next = -1; tp->kept = j; }
            else free_inc(t, j);
            j = next;
        }
        if (!whole) {
            tp->first = j;
            t->incs[j].context = 1;
            settle(t, &t->incs[j]);
            scatter(&t->incs[j], dst, k, written++);
            t->incs[j].context = 0;
            continue;
        }
        int64_t *slot = retired_slot(t, tp->hash, 1);
        if (slot) *slot = tp->n_incs;
        tp->live = 0;
        tp->first = t->free_tuple;
        t->free_tuple = i;
        t->live--;
        n_whole++;
    }
    Py_END_ALLOW_THREADS
    free(plan);
    if (!t->live) {
        /* Empty (the capture ended): give the pools back before the rows are judged. */
        free(t->incs); free(t->tuples);
        t->incs = NULL; t->tuples = NULL;
        t->cap_incs = t->cap_tuples = 0;
        t->free_inc = t->free_tuple = -1;
    }
    if (n_whole && rebuild_index(t, t->live)) return PyErr_NoMemory();
    return Py_BuildValue("(Ln)", (long long)k, (Py_ssize_t)0);
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

static int plan_add(Plan *p, int64_t slot, int64_t context) {
    if (p->n + 2 > p->cap) {
        int64_t cap = p->cap ? 2 * p->cap : 1024;
        int64_t *q = realloc(p->at, (size_t)cap * sizeof(int64_t));
        if (!q) return -1;
        p->at = q;
        p->cap = cap;
    }
    p->at[p->n++] = slot;
    p->at[p->n++] = context;
    return 0;
}

/* peek(table) -> (records, bytes), in retire's format, without removing anything: for each
 * tuple that got segments since the last peek, the incarnations those segments can have
 * changed (see note_touched), as rows where their teardown is over, each with the neighbours
 * its verdicts read as context records (the one before it, held or the copy kept by retire,
 * and the one after it). Incarnations already handed out by retire are never rows here. */
static PyObject *peek(PyObject *self, PyObject *args) {
    PyObject *cap;
    if (!PyArg_ParseTuple(args, "O", &cap)) return NULL;
    Table *t = table_of(cap);
    if (!t) return NULL;
    size_t row = 0;
    for (const Field *f = inc_fields; f->name; f++) row += field_bytes(f);
    for (const Field *f = dir_fields; f->name; f++) row += 2 * field_bytes(f);
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
            if (is_row && prev >= 0 && !prev_added && plan_add(&plan, prev, 1)) goto nomem;
            if (is_row || prev_row) {
                if (plan_add(&plan, j, !is_row)) goto nomem;
                prev_added = 1;
            } else {
                prev_added = 0;
            }
            prev = j;
            prev_row = is_row;
        }
    }
    t->n_touched = 0;
    int64_t k = plan.n / 2;
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)((size_t)k * row));
    if (!out) { free(plan.at); return NULL; }
    uint8_t *dst = (uint8_t *)PyBytes_AS_STRING(out);
    for (int64_t r = 0; r < k; r++) {
        Inc *inc = &t->incs[plan.at[2 * r]];
        int64_t was = inc->context;
        inc->context = plan.at[2 * r + 1];
        settle(t, inc);
        scatter(inc, dst, k, r);
        inc->context = was;
    }
    free(plan.at);
    return Py_BuildValue("(LN)", (long long)k, out);
nomem:
    free(plan.at);
    return PyErr_NoMemory();
}

static PyObject *stats(PyObject *self, PyObject *args) {
    PyObject *cap;
    if (!PyArg_ParseTuple(args, "O", &cap)) return NULL;
    Table *t = table_of(cap);
    if (!t) return NULL;
    return Py_BuildValue("{s:L,s:L,s:L}", "live_tuples", (long long)t->live, "incarnation_slots",
                         (long long)t->cap_incs, "bytes", (long long)(t->cap_incs * (int64_t)sizeof(Inc) +
                         t->cap_tuples * (int64_t)sizeof(Tuple) + (t->index_mask + 1) * 8));
}

static PyObject *field_list(const Field *f) {
    PyObject *out = PyList_New(0);
    for (; out && f->name; f++) {
        PyObject *item = Py_BuildValue("(snsi)", f->name, (Py_ssize_t)f->offset, f->kind, f->count);
        if (!item || PyList_Append(out, item)) { Py_XDECREF(item); Py_DECREF(out); return NULL; }
        Py_DECREF(item);
    }
    return out;
}

/* layout() -> (record size, incarnation fields, direction size, direction offset, direction fields) */
static PyObject *layout(PyObject *self, PyObject *args) {
    PyObject *inc = field_list(inc_fields), *dir = field_list(dir_fields);
    if (!inc || !dir) { Py_XDECREF(inc); Py_XDECREF(dir); return NULL; }
    return Py_BuildValue("(nNnnNn)", (Py_ssize_t)sizeof(Inc), inc, (Py_ssize_t)sizeof(Dir),
                         (Py_ssize_t)offsetof(Inc, d), dir, (Py_ssize_t)NONE);
}

static PyMethodDef methods[] = {
    {"new_table", new_table, METH_VARARGS, "A new, empty flow table."},
    {"feed", feed, METH_VARARGS, "Add a batch of segments in capture order."},
    {"retire", retire, METH_VARARGS, "Records of the tuples done by `now`, removed from the table."},
    {"stats", stats, METH_VARARGS, "Live tuples and bytes held."},
    {"track", track, METH_VARARGS, "Remember which tuples get segments, for peek."},
    {"peek", peek, METH_VARARGS, "Records of finished teardowns changed since the last peek, kept in the table."},
    {"layout", layout, METH_NOARGS, "The record layout, to build the numpy dtype."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_flows", "the flow table", -1, methods};

PyMODINIT_FUNC PyInit__flows(void) { return PyModule_Create(&module); }

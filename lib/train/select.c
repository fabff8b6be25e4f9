/* Codes of a TopK-family step: the encoder product block by block, then the exact
 * selection on the scores e = fl(sae_dotf_lanes(x_c, W_enc,j) + b_enc,j) from the
 * approximate product (float BLAS, or bfloat16 where it pays), so the codes do not depend
 * on which product ran (docs/training.md, "Exact selection from approximate scores").
 *  - TopK: per row, lib/model/refine.c.
 *  - BatchTopK / Matryoshka: two batch heaps take the upper and the lower bounds of every
 *    approximate score. The K-th largest lower bound t is at most the K-th largest exact
 *    score, so the exact top K lie among the entries whose upper bound reaches t; the upper
 *    heap takes only bounds above the lower heap's floor (which only rises towards t), and
 *    when it kept all of those (it is not full, or its smallest kept bound is below t) they
 *    are rescored and the K best taken; otherwise a second pass computes the products
 *    again and rescores every entry whose upper bound reaches t. With the whole batch in
 *    one block no heap screens the bounds as they come: the entries above a floor from the
 *    column maxima are listed once and the lower heap reads only those.
 *  - AuxK: per row on the dead latents, as TopK. */
#include "train/trainer_internal.h"

#include "linalg/bf16.h"
#include "linalg/lanes.h"
#include "linalg/linalg.h"
#include "model/forward.h"
#include "core/parallel.h"
#include "model/refine.h"

#include <math.h>
#include <string.h>

/* Move per-row slots (stride `stride`, counts in row_ptr[r+1]) into compressed rows. */
static void compact_codes(sae_codes *c, int64_t n, int64_t stride)
{
    c->row_ptr[0] = 0;
    for (int64_t r = 0; r < n; r++) {
        int64_t cnt = c->row_ptr[r + 1], at = c->row_ptr[r];
        if (at != r * stride) {
            memmove(c->idx + at, c->idx + r * stride, (size_t)cnt * sizeof *c->idx);
            memmove(c->val + at, c->val + r * stride, (size_t)cnt * sizeof *c->val);
        }
        c->row_ptr[r + 1] = at + cnt;
    }
}

/* What sae_score_err needs of the encoder: its largest row norm and bias, and (bfloat16
 * path) the largest rounding residual of a row. */
typedef struct score_scales {
    double wmax, bmax, ewmax;
} score_scales;

#define SCALE_PARTS 16 /* parts of the encoder's scales, one thread each */

/* The encoder's scales, and the packed bfloat16 encoder when that path is on. */
static void prepare(sae_trainer *t, int nt, score_scales *sc)
{
    const sae_model *m = t->model;
    sae_train_ws *w = &t->ws;
    int64_t d = m->d, l = m->n_latents;
    double wmax[SCALE_PARTS], bmax[SCALE_PARTS]; /* maxima: exact in any grouping */
    int64_t parts = SAE_MIN(SCALE_PARTS, l);
    SAE_FOR_THREADS(nt, p, parts,
                    sae_score_scales(m->w_enc_t + l * p / parts * d, m->b_enc + l * p / parts,
                                     l * (p + 1) / parts - l * p / parts, d, &wmax[p], &bmax[p]));
    sc->wmax = sc->bmax = 0.0;
    for (int64_t p = 0; p < parts; p++)
        sc->wmax = fmax(sc->wmax, wmax[p]), sc->bmax = fmax(sc->bmax, bmax[p]);
    sc->ewmax = 0.0;
    if (w->bf_enc != NULL) {
        int64_t panels = sae_bf16_panel_rows(l, SAE_BF16_NR) / SAE_BF16_NR, np = sae_bf16_pairs(d);
        SAE_FOR_THREADS(nt, q, panels,
                        sae_bf16_pack_cols(m->w_enc_t + q * SAE_BF16_NR * d,
                                           SAE_MIN(SAE_BF16_NR, l - q * SAE_BF16_NR), d, d,
                                           w->bf_enc + q * SAE_BF16_NR * np,
                                           w->bf_resid_cols + q * SAE_BF16_NR,
                                           w->bf_scale_cols + q * SAE_BF16_NR));
        for (int64_t j = 0; j < l; j++)
            sc->ewmax = fmax(sc->ewmax, w->bf_resid_cols[j]);
    }
}

/* Start of thread g's share of a block of nc rows: whole panels of the packed rows, about
 * as many per thread. */
static int64_t share_start(int64_t nc, int64_t g, int nt)
{
    int64_t tr = sae_bf16_tile_rows(), tiles = (nc + tr - 1) / tr;
    return SAE_MIN(nc, (tiles * g + nt / 2) / nt * tr);
}

/* Rows [ra, rb) of the block (centred in xc, ra at a whole panel) packed and scored in
 * bfloat16 into w->pre, on the calling thread; enc (NULL: not timed) gets the seconds
 * from `since` to the end of the scores. */
static void score_rows(sae_trainer *t, int64_t ra, int64_t rb, double since, double *enc)
{
    const sae_model *m = t->model;
    sae_train_ws *w = &t->ws;
    int64_t d = m->d, np = sae_bf16_pairs(d), l = m->n_latents;
    if (rb > ra) {
        sae_bf16_pack_rows(w->xc + ra * d, rb - ra, d, d, w->bf_rows + ra * np,
                           w->bf_resid_rows + ra, w->bf_scale_rows + ra);
        sae_bf16_scores(w->bf_rows + ra * np, w->bf_scale_rows + ra, rb - ra, w->bf_enc,
                        w->bf_scale_cols, l, d, m->b_enc, w->pre + ra * l, l);
    }
    if (enc != NULL)
        *enc = sae_train_now() - since;
}

/* Charges the wall time of a block's region since `since`: to the encoder the first
 * thread's time until its scores were done (enc), the rest to the selection. */
static void charge_split(sae_trainer *t, double since, double enc)
{
    double wall = sae_train_now() - since, first = SAE_MIN(enc, wall);
    t->phase_s[SAE_PHASE_ENCODE] += first;
    t->phase_s[SAE_PHASE_ACTIVATE] += wall - first;
}

/* Scores of one block of nc centred rows into w->pre: bfloat16 (approximate) when packed
 * buffers exist, else the float product. */
static int32_t block_scores(sae_trainer *t, int nt, int64_t nc)
{
    const sae_model *m = t->model;
    sae_train_ws *w = &t->ws;
    if (w->bf_enc == NULL)
        return sae_fwd_scores(m, nt, w->xc, m->d, nc, w->pre, m->n_latents, 1);
    SAE_FOR_THREADS(nt, g, nt,
                    score_rows(t, share_start(nc, g, nt), share_start(nc, g + 1, nt), 0.0, NULL));
    return SAE_OK;
}

/* Rows r0.. (nc of them) centred into w->xc and their approximate scores into w->pre. */
static int32_t score_block(sae_trainer *t, int nt, int64_t r0, int64_t nc)
{
    double since = sae_train_now();
    const sae_model *m = t->model;
    int64_t d = m->d;
    SAE_FOR_THREADS(nt, g, (nc + 63) / 64,
                    sae_fwd_center(m, t->ws.x + (r0 + g * 64) * d, SAE_MIN(64, nc - g * 64), d,
                                   t->ws.xc + g * 64 * d));
    int32_t st = block_scores(t, nt, nc);
    sae_train_tick(t, SAE_PHASE_ENCODE, &since);
    return st;
}

/* The bound on |approximate - exact| for the scores of row r of the block. */
static double row_err(const sae_trainer *t, int64_t r, const score_scales *sc)
{
    int64_t d = t->model->d;
    int bf16 = t->ws.bf_enc != NULL;
    return sae_score_err(bf16, d, sae_norm_f64(t->ws.xc + r * d, d), sc->wmax, sc->bmax,
                         bf16 ? t->ws.bf_resid_rows[r] : 0.0, sc->ewmax);
}

/* Exact top-k (allowed latents) of row r of the block. */
static int64_t refine_row(const sae_trainer *t, int64_t r, int64_t k, const uint8_t *allow,
                          double err, int32_t *idx, float *val)
{
    const sae_model *m = t->model;
    int64_t d = m->d, l = m->n_latents;
    return sae_topk_refine_row(t->ws.pre + r * l, l, k, allow, err, t->ws.xc + r * d, m->w_enc_t,
                               m->b_enc, d, idx, val);
}

/* Row r's candidates scored exactly, the positive ones kept (in place from at); its L0
 * and weighted L1 (ws.dec_norm) into row_loss and row_sp. */
static void relu_exact_row(sae_trainer *t, sae_codes *c, int64_t r, int64_t r0, int64_t at,
                           int64_t cnt)
{
    const sae_model *m = t->model;
    sae_train_ws *w = &t->ws;
    int32_t *idx = c->idx + at;
    float *val = c->val + at;
    sae_scores_exact(w->xc + r * m->d, m->w_enc_t, m->b_enc, m->d, idx, cnt, val);
    int64_t kept = 0;
    double pen = 0.0;
    for (int64_t q = 0; q < cnt; q++) {
        idx[kept] = idx[q], val[kept] = val[q];
        pen += val[q] > 0.0f ? (double)w->dec_norm[idx[q]] * val[q] : 0.0;
        kept += val[q] > 0.0f;
    }
    w->row_loss[r0 + r] = (double)kept;
    w->row_sp[r0 + r] = pen;
}

/* Rows [ra, rb) of a screened ReLU block on one thread: scored (score_rows), then each
 * row's margin and candidates (listed from c->idx + r * room while they fit; counts into
 * cnt). enc (NULL: not timed) gets the seconds of the scores. */
static void relu_share(sae_trainer *t, int64_t ra, int64_t rb, const score_scales *sc,
                       sae_codes *c, int64_t room, double *cnt, double *enc)
{
    sae_train_ws *w = &t->ws;
    int64_t l = t->model->n_latents;
    score_rows(t, ra, rb, enc != NULL ? sae_train_now() : 0.0, enc);
    for (int64_t r = ra; r < rb; r++) {
        w->margin[r] = nextafterf((float)row_err(t, r, sc), INFINITY); /* >= the bound */
        cnt[r] = (double)sae_relu_candidates(w->pre + r * l, l, w->margin[r], c->idx + r * room,
                                             room);
    }
}

int sae_train_relu_screen(sae_trainer *t, int64_t nc, int64_t r0, sae_codes *c)
{
    const sae_model *m = t->model;
    sae_train_ws *w = &t->ws;
    int64_t l = m->n_latents;
    int nt = sae_train_threads(t);
    score_scales sc;
    double since = sae_train_now();
    if (!w->screen_ready) { /* once a step: the encoder's scales, and the packed encoder */
        prepare(t, nt, &sc);
        w->screen_scales[0] = sc.wmax, w->screen_scales[1] = sc.bmax, w->screen_scales[2] = sc.ewmax;
        w->screen_ready = 1;
    }
    sc.wmax = w->screen_scales[0], sc.bmax = w->screen_scales[1], sc.ewmax = w->screen_scales[2];
    sae_train_tick(t, SAE_PHASE_ENCODE, &since);
    /* one pass lists each row's candidates in an equal share of the room; a row with more
     * sends the block through a count and a second pass. row_loss holds the candidates'
     * count until relu_exact_row keeps the active ones. */
    int64_t room = c->cap / nc, *ptr = c->row_ptr, total = 0, widest = 0;
    double *cnt = w->row_loss + r0, enc = 0.0;
    SAE_FOR_THREADS(nt, g, nt,
                    relu_share(t, share_start(nc, g, nt), share_start(nc, g + 1, nt), &sc, c,
                               room, cnt, g == 0 ? &enc : NULL));
    charge_split(t, since, enc);
    since = sae_train_now();
    for (int64_t r = 0; r < nc; r++)
        total += (int64_t)cnt[r], widest = SAE_MAX(widest, (int64_t)cnt[r]);
    if (total > c->cap) {
        sae_train_tick(t, SAE_PHASE_ACTIVATE, &since);
        return 0;
    }
    ptr[0] = 0;
    for (int64_t r = 0; r < nc; r++)
        ptr[r + 1] = widest <= room ? (r + 1) * room : ptr[r] + (int64_t)cnt[r];
    if (widest > room)
        SAE_FOR_THREADS(nt, r, nc,
                        sae_relu_candidates(w->pre + r * l, l, w->margin[r], c->idx + ptr[r],
                                        (int64_t)cnt[r]));
    SAE_FOR_THREADS(nt, r, nc, relu_exact_row(t, c, r, r0, ptr[r], (int64_t)cnt[r]));
    int64_t at = 0; /* close the gaps the rejected candidates left */
    for (int64_t r = 0; r < nc; r++) {
        int64_t from = ptr[r], kept = (int64_t)w->row_loss[r0 + r];
        memmove(c->idx + at, c->idx + from, (size_t)kept * sizeof(int32_t));
        memmove(c->val + at, c->val + from, (size_t)kept * sizeof(float));
        ptr[r] = at;
        at += kept;
    }
    ptr[nc] = at;
    sae_train_tick(t, SAE_PHASE_ACTIVATE, &since);
    return 1;
}

/* Row r of the block as bounds a - c and a + c with c >= 2 err, kept as the row's margin c
 * (the heaps add -c or +c as they read the row): one float rounding each still leaves them
 * outside [e - err, e + err] (the slack covers it: docs/training.md). A row without a
 * finite bound is computed exactly instead (c = 0). */
static void row_bounds(sae_trainer *t, int64_t r, double err)
{
    const sae_model *m = t->model;
    sae_train_ws *w = &t->ws;
    if (!(err < INFINITY)) {
        sae_scores_exact(w->xc + r * m->d, m->w_enc_t, m->b_enc, m->d, NULL, m->n_latents,
                         w->pre + r * m->n_latents);
        w->margin[r] = 0.0f;
        return;
    }
    w->margin[r] = nextafterf((float)(2.0 * err), INFINITY);
}

/* Row r of the block for the second pass: the exact score of every entry whose upper bound
 * (as row_bounds defines it) reaches t, 0 elsewhere (the heap takes positive values only,
 * and an entry below t is beaten by K exact scores). */
static void exact_above(sae_trainer *t, int64_t r, double err, float tl)
{
    const sae_model *m = t->model;
    int64_t d = m->d, l = m->n_latents;
    const float *xc = t->ws.xc + r * d;
    float *row = t->ws.pre + r * l, v[64];
    row_bounds(t, r, err);
    if (!(err < INFINITY))
        return; /* already exact */
    float c = t->ws.margin[r];
    int32_t cols[64];
    int64_t ng = 0;
    for (int64_t j = 0; j < l; j++) {
        if (row[j] + c >= tl)
            cols[ng++] = (int32_t)j;
        else
            row[j] = 0.0f;
        if (ng == 64 || (j == l - 1 && ng > 0)) {
            sae_scores_exact(xc, m->w_enc_t, m->b_enc, d, cols, ng, v);
            for (int64_t g = 0; g < ng; g++)
                row[cols[g]] = v[g];
            ng = 0;
        }
    }
}

/* Rescore candidates [e0, e1) of the upper heap in place (in position order, so the
 * entries of a row are adjacent): each row centred once into xc, its columns in groups. */
static void rescore_range(const sae_trainer *t, float *xc, int64_t e0, int64_t e1)
{
    const sae_model *m = t->model;
    const sae_batch_heap *hh = &t->ws.heap_hi;
    int64_t d = m->d, l = m->n_latents;
    int32_t cols[64];
    for (int64_t e = e0, start = 0, next = 0; e < e1;) { /* groups of up to 64 of one row */
        if (hh->pos[e] >= next) { /* a new row (positions grow: no division per entry) */
            int64_t r = hh->pos[e] / l;
            sae_fwd_center(m, t->ws.x + r * d, 1, d, xc);
            start = r * l, next = start + l;
        }
        int64_t ng = 0;
        for (; e < e1 && hh->pos[e] < next && ng < 64; e++)
            cols[ng++] = (int32_t)(hh->pos[e] - start);
        sae_scores_exact(xc, m->w_enc_t, m->b_enc, d, cols, ng, hh->val + e - ng);
    }
}

/* Start of part p of nparts of the n candidates, moved forward to a row boundary. */
static int64_t part_start(const sae_batch_heap *hh, int64_t l, int64_t n, int64_t p, int64_t nparts)
{
    int64_t e = n * p / nparts;
    while (e > 0 && e < n && hh->pos[e] / l == hh->pos[e - 1] / l)
        e++;
    return e;
}

/* The cut t: the K-th largest lower bound, or 0 with fewer than K positive ones (then any
 * positive score may be in). Leaves the K best lower bounds in the heap. */
static float lower_cut(sae_batch_heap *h)
{
    float tl = sae_batch_heap_min(h);
    return h->n < h->cap ? 0.0f : tl;
}

/* Of the first m entries of the upper heap's buffers (positive upper bounds, in position
 * order), keeps those >= t at the front; returns how many. */
static int64_t keep_reaching(sae_batch_heap *hh, int64_t m, float tl)
{
    int64_t nc = 0;
    for (int64_t e = 0; e < m; e++) {
        hh->val[nc] = hh->val[e], hh->pos[nc] = hh->pos[e];
        nc += hh->val[e] >= tl;
    }
    return nc;
}

/* The candidates (positive upper bounds >= t) from the upper heap into its buffers, in
 * position order; -1 when some may be missing. */
static int64_t gather_candidates(sae_batch_heap *hh, float tl)
{
    float hmin = sae_batch_heap_min(hh);
    if (hh->n == hh->cap && !(hmin < tl))
        return -1; /* an upper bound >= t may have been dropped */
    return keep_reaching(hh, hh->n, tl);
}

/* The same with the whole batch in one block (its bounds still in w->pre): the column
 * maxima of the lower bounds give a floor f under t; the entries whose upper bound passes
 * f (every lower bound above f among them) are listed once in the upper heap's buffers,
 * the lower heap takes their lower bounds, and the list is cut to the upper bounds >= t.
 * Sets *cut to t; -1 (after offering every lower bound) when the list overflows. */
static int64_t one_block_candidates(sae_trainer *t, int64_t n, float *cut)
{
    sae_train_ws *w = &t->ws;
    sae_batch_heap *h = &w->heap, *hh = &w->heap_hi;
    int64_t l = t->model->n_latents;
    sae_batch_heap_raise_floor(h, w->pre, n, l, w->margin, -1.0f);
    int64_t m = sae_batch_collect_above(w->pre, n, l, w->margin, h->floor, hh->val, NULL, hh->pos,
                                        hh->cap, 0);
    if (m < 0) {
        sae_batch_heap_offer_rows_shifted(h, w->pre, n, l, 0, w->margin, -1.0f);
        *cut = lower_cut(h);
        return -1;
    }
    sae_batch_heap_offer_at(h, w->pre, l, hh->pos, m, w->margin, -1.0f, 0);
    *cut = lower_cut(h);
    return keep_reaching(hh, m, *cut); /* (the list holds positive bounds only) */
}

/* The exact batch top K from the lower heap and the candidates; leaves the selection in
 * w->heap. Returns 0 when the candidates could not be certified (*cut is t either way), -1
 * when the lower heap started from a floor hint and kept fewer than K bounds above it (t
 * may then lie below the hint: nothing is certain). */
static int batch_refine(sae_trainer *t, int nt, int64_t n, float *cut)
{
    const sae_model *m = t->model;
    sae_train_ws *w = &t->ws;
    int64_t l = m->n_latents, nc;
    sae_batch_heap *hh = &w->heap_hi;
    if (n <= w->chunk) {
        nc = one_block_candidates(t, n, cut);
    } else {
        *cut = lower_cut(&w->heap);
        nc = gather_candidates(hh, *cut);
    }
    if (w->floor_hint > 0.0f && w->heap.n < w->heap.cap) /* the heap started from the hint */
        return -1;
    if (nc < 0)
        return 0;
    int64_t parts = SAE_MIN((int64_t)nt, w->chunk); /* one centred row of xc per part */
    SAE_FOR_THREADS(nt, p, parts,
                    rescore_range(t, w->xc + p * m->d, part_start(hh, l, nc, p, parts),
                                  part_start(hh, l, nc, p + 1, parts)));
    sae_batch_heap_take_best(&w->heap, hh->val, hh->pos, nc);
    return 1;
}

/* Both sides of rows r0.. of the block (nc of them) row by row: the lower bounds, then the
 * upper bounds above the floor the lower heap reached. That floor never exceeds the final
 * cut t, so an upper bound at or below the float under it belongs to an entry beaten by K
 * exact scores (strictly: e < upper). */
static void offer_rows(sae_trainer *t, int64_t nc, int64_t r0)
{
    sae_train_ws *w = &t->ws;
    int64_t l = t->model->n_latents;
    sae_batch_heap_offer_rows_shifted(&w->heap, w->pre, nc, l, r0, w->margin, -1.0f);
    w->heap_hi.floor = SAE_MAX(w->heap_hi.floor, nextafterf(w->heap.floor, -INFINITY));
    sae_batch_heap_offer_rows_shifted(&w->heap_hi, w->pre, nc, l, r0, w->margin, 1.0f);
}

/* The block's first row in share p of a list: the rows thread p scored (share_start). */
static inline int64_t share_row(const sae_block_list *b, int64_t p)
{
    return share_start(b->nc, p, (int)b->parts);
}

/* The upper bounds listed for the block before (half w->up_half) into the upper heap,
 * screened by the floor the lower heap had after that block (as offer_rows does). */
static void flush_upper(sae_trainer *t)
{
    sae_train_ws *w = &t->ws;
    if (!w->up_pending)
        return;
    sae_batch_heap *hh = &w->heap_hi;
    const sae_block_list *b = &w->lists[w->up_half];
    int64_t at = w->up_half * w->list_cap, l = t->model->n_latents;
    hh->floor = SAE_MAX(hh->floor, nextafterf(w->up_floor, -INFINITY));
    for (int64_t p = 0; p < b->parts; p++)
        sae_batch_heap_offer_list(hh, w->list_val + at + p * b->share,
                                  w->list_pos + at + p * b->share, b->got[p],
                                  (b->r0 + share_row(b, p)) * l);
    w->up_pending = 0;
}

/* Lists the entries of the block's nc rows (of w->pre, from batch row r0) whose upper bound
 * is > fl into half `half` of the list: each thread the rows it scored, listed in its share
 * of the list. Returns 0, or -1 when a share overflows. */
static int list_block(sae_trainer *t, int nt, int64_t nc, int64_t r0, float fl, int half)
{
    sae_train_ws *w = &t->ws;
    sae_block_list *b = &w->lists[half];
    int64_t l = t->model->n_latents, at = half * w->list_cap;
    b->parts = SAE_MIN((int64_t)nt, SAE_LIST_PARTS);
    b->share = w->list_cap / b->parts, b->r0 = r0, b->nc = nc;
    SAE_FOR_THREADS(nt, p, b->parts, {
        int64_t ra = share_row(b, p), rb = share_row(b, p + 1);
        b->got[p] = sae_batch_collect_above(w->pre + ra * l, rb - ra, l, w->margin + ra, fl,
                                            w->list_val + at + p * b->share,
                                            w->list_low + at + p * b->share,
                                            w->list_pos + at + p * b->share, b->share, 1);
    });
    for (int64_t p = 0; p < b->parts; p++)
        if (b->got[p] < 0)
            return -1;
    return 0;
}

/* The lower bounds of the entries listed in half `half` into the lower heap: listed beside
 * the upper ones by the thread that scored their rows, so that this one thread reads them
 * in order instead of gathering them from w->pre. */
static void offer_lower(sae_trainer *t, int half)
{
    sae_train_ws *w = &t->ws;
    const sae_block_list *b = &w->lists[half];
    int64_t at = half * w->list_cap, l = t->model->n_latents;
    for (int64_t p = 0; p < b->parts; p++) {
        int64_t e = at + p * b->share;
        sae_batch_heap_offer_list(&w->heap, w->list_low + e, w->list_pos + e, b->got[p],
                                  (b->r0 + share_row(b, p)) * l);
    }
}

/* Both sides for one block, as offer_rows offers them, from a list of the entries whose
 * upper bound reaches the lower heap's floor (on the first block the floor from the column
 * maxima), as does every value either heap would take. The lower heap reads the listed
 * entries' lower bounds from w->pre; the upper heap takes the listed upper bounds once the
 * lower heap is done with the block: with threads, beside the lower side of the next
 * block. A block whose list overflows goes row by row. With the whole batch in one block
 * both sides are left in w->pre for one_block_candidates instead. */
static void offer_block(sae_trainer *t, int nt, int64_t n, int64_t nc, int64_t r0)
{
    sae_train_ws *w = &t->ws;
    sae_batch_heap *h = &w->heap;
    if (n <= w->chunk)
        return;
    sae_batch_heap_raise_floor(h, w->pre, nc, t->model->n_latents, w->margin, -1.0f);
    int half = w->up_pending ? !w->up_half : 0;
    /* the upper side takes v >= a floor: one float lower */
    if (list_block(t, nt, nc, r0, nextafterf(h->floor, -INFINITY), half) < 0) {
        flush_upper(t);
        offer_rows(t, nc, r0);
        return;
    }
    if (w->up_pending && nt > 1) {
        SAE_FOR_THREADS(SAE_MIN(nt, 2), side, 2,
                        side == 0 ? offer_lower(t, half) : flush_upper(t));
    } else {
        flush_upper(t);
        offer_lower(t, half);
    }
    w->up_pending = 1, w->up_half = half, w->up_floor = h->floor;
    if (nt == 1)
        flush_upper(t);
}

/* The fallback of the batch selection: the products once more, and the exact score of
 * every entry whose upper bound reaches t, into the lower heap (scratch stays one block). */
static int32_t batch_second_pass(sae_trainer *t, int nt, int64_t n, float tl,
                                 const score_scales *sc)
{
    sae_train_ws *w = &t->ws;
    int64_t l = t->model->n_latents;
    sae_batch_heap_reset(&w->heap, w->heap.cap);
    for (int64_t r0 = 0; r0 < n; r0 += w->chunk) {
        int64_t nc = SAE_MIN(w->chunk, n - r0);
        int32_t st = score_block(t, nt, r0, nc);
        if (st != SAE_OK)
            return st;
        double since = sae_train_now();
        SAE_FOR_THREADS(nt, r, nc, exact_above(t, r, row_err(t, r, sc), tl));
        sae_batch_heap_offer_rows(&w->heap, w->pre, nc, l, r0);
        sae_train_tick(t, SAE_PHASE_ACTIVATE, &since);
    }
    return SAE_OK;
}

/* The lower heap's starting floor for the next step: a little under this step's cut t,
 * which moves by a few per cent per step in training. Any value gives the same selection:
 * above the next cut it costs that step a second selection (batch_refine returns -1). */
static float hint_after(float tl)
{
    return tl > 0.0f && tl < INFINITY ? 0.875f * tl : 0.0f;
}

/* Row r of the block at batch row r0: its AuxK codes (use_aux), then its TopK codes or
 * (BatchTopK family) its bounds. */
static void select_row(sae_trainer *t, int64_t r, int64_t r0, int use_aux,
                       const score_scales *sc)
{
    sae_train_ws *w = &t->ws;
    int64_t k = t->model->k, ka = t->aux_k, at = (r0 + r) * k, ata = (r0 + r) * ka;
    double err = row_err(t, r, sc);
    if (use_aux) /* before row_bounds may rescore the row */
        w->aux.row_ptr[r0 + r + 1] =
            refine_row(t, r, ka, w->dead, err, w->aux.idx + ata, w->aux.val + ata);
    if (sae_arch_is_batch(t->model->arch))
        row_bounds(t, r, err);
    else
        w->codes.row_ptr[r0 + r + 1] =
            refine_row(t, r, k, NULL, err, w->codes.idx + at, w->codes.val + at);
}

/* Rows [ra, rb) of the block at batch row r0 on one thread: centred, packed, scored in
 * bfloat16 and selected, so that each score is written and read by the same core (a
 * split of the product by columns, with rows selected on any thread, made each thread's
 * kernel about 18 % slower on two threads: medium TopK encoder phase 15.7-16.7 against
 * 14.4-14.8 ms per step). enc (NULL: not timed) gets the seconds before the selection. */
static void share_rows(sae_trainer *t, int64_t ra, int64_t rb, int64_t r0, int use_aux,
                       const score_scales *sc, double *enc)
{
    const sae_model *m = t->model;
    int64_t d = m->d;
    double since = enc != NULL ? sae_train_now() : 0.0;
    if (rb > ra)
        sae_fwd_center(m, t->ws.x + (r0 + ra) * d, rb - ra, d, t->ws.xc + ra * d);
    score_rows(t, ra, rb, since, enc);
    for (int64_t r = ra; r < rb; r++)
        select_row(t, r, r0, use_aux, sc);
}

/* One block on the bfloat16 path: a share of rows per thread (share_rows). */
static void scored_block(sae_trainer *t, int nt, int64_t nc, int64_t r0, int use_aux,
                         const score_scales *sc)
{
    double since = sae_train_now(), enc = 0.0;
    SAE_FOR_THREADS(nt, g, nt,
                    share_rows(t, share_start(nc, g, nt), share_start(nc, g + 1, nt), r0, use_aux,
                               sc, g == 0 ? &enc : NULL));
    charge_split(t, since, enc);
}

int32_t sae_train_select_codes(sae_trainer *t, int64_t n, int use_aux)
{
    const sae_model *m = t->model;
    sae_train_ws *w = &t->ws;
    int64_t l = m->n_latents, k = m->k, ka = t->aux_k;
    SAE_MAYBE_UNUSED int nt = sae_train_threads(t);
    int batch = sae_arch_is_batch(m->arch);
    score_scales scales, *sc = &scales;
    if (batch) {
        sae_batch_heap_reset(&w->heap, n * k);
        sae_batch_heap_reset(&w->heap_hi, w->heap_hi.cap);
        w->up_pending = 0;
        w->heap.floor = w->floor_hint;
    }
    double packed = sae_train_now();
    prepare(t, nt, sc);
    sae_train_tick(t, SAE_PHASE_ENCODE, &packed); /* the packed encoder is encoder work */
    for (int64_t r0 = 0; r0 < n; r0 += w->chunk) {
        int64_t nc = SAE_MIN(w->chunk, n - r0);
        double since;
        if (w->bf_enc != NULL) {
            scored_block(t, nt, nc, r0, use_aux, sc);
            since = sae_train_now();
        } else {
            int32_t st = score_block(t, nt, r0, nc);
            if (st != SAE_OK)
                return st;
            since = sae_train_now();
            SAE_FOR_THREADS_DYNAMIC(nt, r, nc, select_row(t, r, r0, use_aux, sc));
        }
        if (batch)
            offer_block(t, nt, n, nc, r0);
        sae_train_tick(t, SAE_PHASE_ACTIVATE, &since);
    }
    double since = sae_train_now();
    if (batch) {
        flush_upper(t);
        float tl;
        int certified = batch_refine(t, nt, n, &tl);
        if (certified < 0) { /* the hint was above the cut: the selection again without it */
            sae_train_tick(t, SAE_PHASE_ACTIVATE, &since);
            w->floor_hint = 0.0f;
            w->hint_misses++;
            return sae_train_select_codes(t, n, use_aux);
        }
        if (!certified) {
            int32_t st = batch_second_pass(t, nt, n, tl, sc);
            if (st != SAE_OK)
                return st;
            since = sae_train_now();
        }
        w->floor_hint = hint_after(tl);
        w->batch_min = sae_batch_heap_min(&w->heap);
        sae_batch_heap_to_codes(&w->heap, n, l, &w->codes);
    } else {
        w->batch_min = 0.0;
        compact_codes(&w->codes, n, k);
    }
    if (use_aux)
        compact_codes(&w->aux, n, ka);
    sae_train_tick(t, SAE_PHASE_ACTIVATE, &since);
    return SAE_OK;
}

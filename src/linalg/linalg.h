/* Small dense linear algebra for the rotation and quantization code: matrix products,
 * transpose, Householder QR, Cholesky and triangular solves, orthogonality checks and Haar
 * random orthogonal matrices.
 *
 * Conventions: every matrix is row-major and densely packed (the leading dimension equals the
 * column count). Sizes are int and must be >= 0, and a product of two sizes must fit in size_t.
 * Results never depend on the CPU: the SIMD paths of the products keep the scalar summation
 * order, so they give the same bits. Functions returning sq_status report invalid sizes,
 * numerical failures and failed allocations (SQ_ERR_NOMEM). The void functions have no failure cases
 * for valid sizes.
 *
 * Limits: these are cache-blocked loops, not a BLAS. QR is unblocked Householder and memory
 * bound for large n. A Haar matrix (QR plus forming Q) took 0.6 s for n = 1018, 4.6 s for
 * n = 2048 and 262 s for n = 4096 on a shared, heavily loaded 2-core x86 machine (measured
 * with a throwaway timing program, single-threaded). */
#ifndef SQ_LINALG_LINALG_H
#define SQ_LINALG_LINALG_H

#include <stdbool.h>
#include <stdint.h>

#include "core/status.h"

/* Whether a gemm operand is used as stored or transposed (BLAS's 'N' and 'T'). */
typedef enum sq_linalg_op {
    SQ_LINALG_NO_TRANSPOSE = 0,
    SQ_LINALG_TRANSPOSE = 1,
} sq_linalg_op;

/* Computes C = A·B.
 * a: (m, k); b: (k, n); c: (m, n), overwritten and not aliasing a or b.
 * Each c[i][j] is summed in increasing order of the inner index, starting from 0. */
void sq_linalg_matmul_f32(const float *a, const float *b, float *c, int m, int k, int n);
void sq_linalg_matmul_f64(const double *a, const double *b, double *c, int m, int k, int n);

/* The same products compiled for the baseline instruction set only (no AVX2), so that tests
 * can check that the kernel chosen at run time gives the same bits. */
void sq_linalg_matmul_baseline_f32(const float *a, const float *b, float *c, int m, int k, int n);
void sq_linalg_matmul_baseline_f64(const double *a, const double *b, double *c, int m, int k,
                                   int n);

/* Computes C = op(A)·op(B), where op(A) is (m, k) and op(B) is (k, n).
 * a: (m, k) or, transposed, (k, m); b: (k, n) or, transposed, (n, k); c: (m, n).
 * A transposed operand is copied to a temporary first, so the result has the same bits as
 * sq_linalg_matmul_* on explicitly transposed inputs. */
sq_status sq_linalg_gemm_f32(sq_linalg_op op_a, sq_linalg_op op_b, int m, int n, int k,
                             const float *a, const float *b, float *c, sq_error *err);
sq_status sq_linalg_gemm_f64(sq_linalg_op op_a, sq_linalg_op op_b, int m, int n, int k,
                             const double *a, const double *b, double *c, sq_error *err);

/* Writes out = inᵀ. in: (rows, cols); out: (cols, rows), not aliasing in. */
void sq_linalg_transpose_f32(const float *in, float *out, int rows, int cols);
void sq_linalg_transpose_f64(const double *in, double *out, int rows, int cols);

/* Factors a (rows, cols), rows >= cols, in place by Householder reflections, as LAPACK's
 * geqrf does. Afterwards the upper triangle contains R (cols, cols), and the entries below the
 * diagonal contain the reflector vectors v_i (v_i[i] = 1 is implicit). tau (cols) receives the
 * reflector coefficients, so that A = H_0·H_1·…·H_(cols-1)·R with H_i = I - tau_i·v_i·v_iᵀ. */
sq_status sq_linalg_qr_factor(double *a, int rows, int cols, double *tau, sq_error *err);

/* Overwrites the output of sq_linalg_qr_factor with the thin Q (rows, cols), whose columns
 * are orthonormal, as LAPACK's orgqr does. tau: (cols) from sq_linalg_qr_factor. */
sq_status sq_linalg_qr_form_q(double *a, int rows, int cols, const double *tau, sq_error *err);

/* Computes the thin QR decomposition A = Q·R of a (rows, cols), rows >= cols.
 * q: (rows, cols) with orthonormal columns; r: (cols, cols), upper triangular, or NULL when
 * the caller needs only Q. a is not modified. */
sq_status sq_linalg_qr(const double *a, int rows, int cols, double *q, double *r, sq_error *err);

/* Returns max |(Qᵀ·Q - I)[i][j]| for q: (n, n), computed in double; 0 for n = 0. */
double sq_linalg_orthogonality_error_f32(const float *q, int n);
double sq_linalg_orthogonality_error_f64(const double *q, int n);

/* Factors a symmetric positive definite a (n, n) in place as A = L·Lᵀ: the lower triangle
 * receives L and the strict upper triangle is set to 0. Only the lower triangle of the input
 * is read. Returns SQ_ERR_NUMERIC, naming the column and its pivot, when A is not positive
 * definite (a pivot <= 0 or not finite); a is then partly overwritten. */
sq_status sq_linalg_cholesky(double *a, int n, sq_error *err);

/* Solves op(T)·X = B in place for a triangular t (n, n). t is lower triangular when lower is
 * true, else upper, and op selects T or Tᵀ. Only that triangle of t is read.
 * b: (n, nrhs), overwritten with X. Returns SQ_ERR_NUMERIC, naming the row, when a
 * diagonal entry of t is 0 or not finite (b is then partly overwritten). */
sq_status sq_linalg_solve_triangular(const double *t, int n, bool lower, sq_linalg_op op,
                                     double *b, int nrhs, sq_error *err);

/* Computes A⁻¹ = L⁻ᵀ·L⁻¹ from the Cholesky factor l (n, n) of A (lower triangle, as written by
 * sq_linalg_cholesky). inverse: (n, n), symmetric, may not alias l. */
sq_status sq_linalg_cholesky_inverse(const double *l, int n, double *inverse, sq_error *err);

/* Fills out (n, n) with a Haar-distributed random orthogonal matrix: Q from the QR
 * decomposition of a matrix of independent standard normals (drawn row by row from an sq_rng
 * seeded with seed), with the sign of each column of Q chosen so that diag(R) > 0. The same
 * seed gives the same bits on every platform (see rng.h). */
sq_status sq_linalg_random_orthogonal_f64(int n, uint64_t seed, double *out, sq_error *err);
sq_status sq_linalg_random_orthogonal_f32(int n, uint64_t seed, float *out, sq_error *err);

#endif

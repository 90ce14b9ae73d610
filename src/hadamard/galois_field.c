/* GF(p^e) arithmetic for the Paley constructions: find an irreducible polynomial by trial
 * division, list the squares, and tabulate the quadratic character of every difference.
 * Elements are integers 0..q-1 whose base-p digits are polynomial coefficients. */
#include "hadamard/galois_field.h"

#include <stdlib.h>
#include <string.h>

enum { MAX_EXPONENT = 32 }; /* q < 2^31 implies e <= 30 */

bool sq_galois_prime_power(int q, int *prime, int *exponent) {
    if (q < 2) {
        return false;
    }
    int p = q;
    for (int d = 2; (long long)d * d <= q; d++) {
        if (q % d == 0) {
            p = d;
            break;
        }
    }
    int e = 0;
    int rest = q;
    while (rest % p == 0) {
        rest /= p;
        e++;
    }
    if (rest != 1) {
        return false;
    }
    *prime = p;
    *exponent = e;
    return true;
}

/* Writes the e base-p digits of value into digits, lowest first. */
static void to_digits(int value, int p, int e, int *digits) {
    for (int i = 0; i < e; i++) {
        digits[i] = value % p;
        value /= p;
    }
}

static int from_digits(const int *digits, int p, int e) {
    int value = 0;
    for (int i = e - 1; i >= 0; i--) {
        value = value * p + digits[i];
    }
    return value;
}

/* Returns true when the monic divisor (degree divisor_degree, coefficients lowest first with
 * an implicit leading 1) divides the monic polynomial of degree degree. */
static bool monic_divides(const int *polynomial, int degree, const int *divisor,
                          int divisor_degree, int p) {
    int remainder[MAX_EXPONENT + 1];
    memcpy(remainder, polynomial, (size_t)degree * sizeof(int));
    remainder[degree] = 1;
    for (int top = degree; top >= divisor_degree; top--) {
        int factor = remainder[top];
        if (factor == 0) {
            continue;
        }
        int shift = top - divisor_degree;
        remainder[top] = 0;
        for (int i = 0; i < divisor_degree; i++) {
            remainder[shift + i] = ((remainder[shift + i] - factor * divisor[i]) % p + p) % p;
        }
    }
    for (int i = 0; i < divisor_degree; i++) {
        if (remainder[i] != 0) {
            return false;
        }
    }
    return true;
}

/* Finds the first monic irreducible polynomial of degree e over GF(p) (coefficients of x^0 ..
 * x^(e-1) in modulus, leading 1 implicit) by trial division with every monic polynomial of
 * degree 1..e/2. There are about p^(e/2) <= sqrt(q) candidates, so this is cheap. */
static void find_irreducible(int p, int e, int *modulus) {
    int q = 1;
    for (int i = 0; i < e; i++) {
        q *= p;
    }
    for (int candidate = 0; candidate < q; candidate++) {
        to_digits(candidate, p, e, modulus);
        if (e > 1 && modulus[0] == 0) {
            continue; /* divisible by x */
        }
        bool irreducible = true;
        for (int degree = 1; irreducible && 2 * degree <= e; degree++) {
            int divisor_count = 1;
            for (int i = 0; i < degree; i++) {
                divisor_count *= p;
            }
            int divisor[MAX_EXPONENT];
            for (int d = 0; d < divisor_count && irreducible; d++) {
                to_digits(d, p, degree, divisor);
                irreducible = !monic_divides(modulus, e, divisor, degree, p);
            }
        }
        if (irreducible) {
            return;
        }
    }
    /* Unreachable: an irreducible polynomial of every degree exists over every GF(p). */
}

/* Returns the element a·a modulo the field polynomial. */
static int square_element(int a, int p, int e, const int *modulus) {
    int digits[MAX_EXPONENT];
    int product[2 * MAX_EXPONENT] = {0};
    to_digits(a, p, e, digits);
    for (int i = 0; i < e; i++) {
        for (int j = 0; j < e; j++) {
            product[i + j] = (product[i + j] + digits[i] * digits[j]) % p;
        }
    }
    /* Reduce with x^e = -Σ modulus[i]·x^i, from the top degree down. */
    for (int top = 2 * e - 2; top >= e; top--) {
        int factor = product[top];
        if (factor == 0) {
            continue;
        }
        product[top] = 0;
        for (int i = 0; i < e; i++) {
            int index = top - e + i;
            product[index] = ((product[index] - factor * modulus[i]) % p + p) % p;
        }
    }
    return from_digits(product, p, e);
}

sq_status sq_galois_jacobsthal(int q, int8_t *jacobsthal, sq_error *err) {
    int p = 0;
    int e = 0;
    if (!sq_galois_prime_power(q, &p, &e) || p == 2) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "GF(%d) is not supported: expected an odd prime power", q);
    }
    int8_t *character = malloc((size_t)q);
    int *digits = malloc((size_t)q * (size_t)e * sizeof(int));
    if (character == NULL || digits == NULL) {
        free(character);
        free(digits);
        return sq_error_set(err, SQ_ERR_NOMEM, "out of memory for the tables of GF(%d)", q);
    }

    /* Quadratic character: mark every square, then everything else nonzero is a non-square. */
    int modulus[MAX_EXPONENT];
    find_irreducible(p, e, modulus);
    memset(character, -1, (size_t)q);
    character[0] = 0;
    for (int a = 1; a < q; a++) {
        character[square_element(a, p, e, modulus)] = 1;
    }

    /* Q[i][j] = χ(x_i - x_j), subtracting digit by digit modulo p. */
    for (int i = 0; i < q; i++) {
        to_digits(i, p, e, digits + (size_t)i * e);
    }
    for (int i = 0; i < q; i++) {
        const int *x = digits + (size_t)i * e;
        for (int j = 0; j < q; j++) {
            const int *y = digits + (size_t)j * e;
            int difference = 0;
            for (int d = e - 1; d >= 0; d--) {
                int digit = x[d] - y[d];
                difference = difference * p + (digit < 0 ? digit + p : digit);
            }
            jacobsthal[(size_t)i * (size_t)q + j] = character[difference];
        }
    }

    free(character);
    free(digits);
    return SQ_OK;
}

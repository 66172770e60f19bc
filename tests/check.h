/* A tiny test harness: RUN(case) runs one case; CHECK* record failures with file:line and the
 * numbers involved; SKIP_CASE(reason) marks a case that cannot run on this machine (counted
 * and shown with its reason, never as a pass); main ends with CHECK_SUMMARY(), which prints
 * "N passed, N failed, N skipped". */
#ifndef CIGL_CHECK_H
#define CIGL_CHECK_H
#include <math.h>
#include <stdio.h>

static int check_passed, check_failed, check_skipped, check_case_failed;
static char check_skip_reason[200];

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "  %s:%d: check failed: %s: ", __FILE__, __LINE__,  \
                    #cond);                                                     \
            fprintf(stderr, __VA_ARGS__);                                       \
            fputc('\n', stderr);                                                \
            check_case_failed = 1;                                              \
        }                                                                       \
    } while (0)

/* |a - b| <= atol + rtol * |b| */
#define CHECK_CLOSE(a, b, atol, rtol, what)                                     \
    do {                                                                        \
        double ca_ = (double)(a), cb_ = (double)(b);                            \
        CHECK(fabs(ca_ - cb_) <= (atol) + (rtol) * fabs(cb_) && !isnan(ca_),    \
              "%s: got %.9g, expected %.9g", (what), ca_, cb_);                 \
    } while (0)

/* The case cannot run here: say why (one line) and return from the case. */
#define SKIP_CASE(...)                                                          \
    do {                                                                        \
        snprintf(check_skip_reason, sizeof check_skip_reason, __VA_ARGS__);     \
        return;                                                                 \
    } while (0)

#define RUN(fn)                                                                 \
    do {                                                                        \
        check_case_failed = 0;                                                  \
        check_skip_reason[0] = 0;                                               \
        fn();                                                                   \
        if (check_case_failed) {                                                \
            printf("FAIL %s\n", #fn);                                           \
            check_failed++;                                                     \
        } else if (check_skip_reason[0]) {                                      \
            printf("SKIP %s: %s\n", #fn, check_skip_reason);                    \
            check_skipped++;                                                    \
        } else {                                                                \
            printf("ok   %s\n", #fn);                                           \
            check_passed++;                                                     \
        }                                                                       \
        fflush(stdout);                                                         \
    } while (0)

#define CHECK_SUMMARY()                                                         \
    (printf("%d passed, %d failed, %d skipped\n", check_passed, check_failed,   \
            check_skipped),                                                     \
     check_failed ? 1 : 0)

#endif

/* A tiny test harness: RUN(case) runs one case; CHECK* record failures with file:line and the
 * numbers involved; main ends with CHECK_SUMMARY(), which prints "N passed, N failed". */
#ifndef CIGL_CHECK_H
#define CIGL_CHECK_H
#include <math.h>
#include <stdio.h>

static int check_passed, check_failed, check_case_failed;

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

#define RUN(fn)                                                                 \
    do {                                                                        \
        check_case_failed = 0;                                                  \
        fn();                                                                   \
        if (check_case_failed) {                                                \
            printf("FAIL %s\n", #fn);                                           \
            check_failed++;                                                     \
        } else {                                                                \
            printf("ok   %s\n", #fn);                                           \
            check_passed++;                                                     \
        }                                                                       \
        fflush(stdout);                                                         \
    } while (0)

#define CHECK_SUMMARY()                                                         \
    (printf("%d passed, %d failed\n", check_passed, check_failed),              \
     check_failed ? 1 : 0)

#endif

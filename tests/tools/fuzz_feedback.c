/*
 * fuzz_feedback.c - libFuzzer target for the feedback parser
 * (tools/feedback_parse.c).  Built only with clang (-fsanitize=fuzzer);
 * ctest runs it briefly over the sample reports in tests/tools/feedback.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "feedback_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One input: parse it; any crash or sanitizer report is the finding. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fb_report r;
    fb_parse((const char *)data, size, &r);
    return 0;
}

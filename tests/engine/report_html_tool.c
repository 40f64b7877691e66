/*
 * report_html_tool.c - test driver for engine/report_html: renders a
 * report object read from a JSON file.
 *
 * USAGE
 *   report_html_tool html REPORT.json     the page on stdout
 *   report_html_tool text REPORT.json     the text summary on stdout
 *
 * DIAGNOSTICS
 *   Exit 0 on success, 1 with the reason on stderr (the renderer's error
 *   as its errno text), 2 for bad usage or an unreadable file.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

#include "report_html.h"

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[1], "html") && strcmp(argv[1], "text"))) {
        fprintf(stderr, "usage: report_html_tool html|text REPORT.json\n");
        return 2;
    }
    json_error_t jerr;
    json_t *r = json_load_file(argv[2], JSON_DECODE_ANY, &jerr);
    if (!r) {
        fprintf(stderr, "report_html_tool: %s: %s\n", argv[2], jerr.text);
        return 2;
    }
    char *out;
    size_t len;
    int rc = !strcmp(argv[1], "html") ? report_html_render(r, &out, &len)
                                      : report_text_summary(r, &out, &len);
    json_decref(r);
    if (rc) {
        fprintf(stderr, "report_html_tool: %s\n", strerror(-rc));
        return 1;
    }
    fwrite(out, 1, len, stdout);
    free(out);
    return 0;
}

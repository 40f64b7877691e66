/*
 * test_console_assets.c - the web console's files as sluiced embeds them
 * (engine/console_embed.cmake): every file under engine/console/ is in
 * the table, byte for byte, with the content type of its extension, and
 * nothing else is.
 *
 * usage: test_console_assets DIR   (DIR: the source's engine/console)
 */
#include <dirent.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "console_assets.h"

static const char *dir;

/* The type the embedding gives files named like path. */
static const char *type_of(const char *path)
{
    const char *dot = strrchr(path, '.');
    static const struct { const char *ext, *type; } t[] = {
        { ".html", "text/html; charset=utf-8" },
        { ".js", "text/javascript; charset=utf-8" },
        { ".css", "text/css; charset=utf-8" },
        { ".svg", "image/svg+xml" }, { ".png", "image/png" },
        { ".ico", "image/x-icon" }, { ".json", "application/json" },
        { ".txt", "text/plain; charset=utf-8" },
    };
    for (size_t i = 0; dot && i < sizeof t / sizeof t[0]; i++)
        if (!strcmp(dot, t[i].ext))
            return t[i].type;
    return "?";
}

/* Check the files under rel (a folder of dir); count them in *n. */
static void walk(const char *rel, size_t *n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s%s", dir, rel);
    DIR *d = opendir(path);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char sub[2048], full[8192];
        struct stat st;
        snprintf(sub, sizeof sub, "%s/%s", rel, de->d_name);
        snprintf(full, sizeof full, "%s%s", dir, sub);
        assert_int_equal(stat(full, &st), 0);
        if (S_ISDIR(st.st_mode)) {
            walk(sub, n);
            continue;
        }
        const struct console_asset *a = console_assets;
        while (a->path && strcmp(a->path, sub))
            a++;
        if (!a->path)
            fail_msg("%s is not embedded", sub);
        assert_string_equal(a->type, type_of(sub));
        assert_int_equal(a->len, (size_t)st.st_size);
        FILE *f = fopen(full, "rb");
        assert_non_null(f);
        unsigned char *buf = malloc(a->len + 1);
        assert_non_null(buf);
        assert_int_equal(fread(buf, 1, a->len + 1, f), a->len);
        fclose(f);
        assert_memory_equal(buf, a->data, a->len);
        assert_int_equal(a->data[a->len], 0);
        free(buf);
        ++*n;
    }
    closedir(d);
}

static void test_every_file_embedded(void **state)
{
    (void)state;
    size_t files = 0, rows = 0;
    walk("", &files);
    for (const struct console_asset *a = console_assets; a->path; a++)
        rows++;
    assert_int_equal(rows, files);   /* and nothing else */
    assert_true(files >= 3);         /* index.html, app.js, app.css */
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_console_assets DIR\n");
        return 64;
    }
    dir = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_file_embedded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

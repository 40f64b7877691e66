/*
 * console_assets.h - the web console's static files, embedded in sluiced
 * at build time from engine/console/ (console_embed.cmake generates the
 * table; console_http.c serves it at / and /static/...).
 */
#ifndef SLUICE_ENGINE_CONSOLE_ASSETS_H
#define SLUICE_ENGINE_CONSOLE_ASSETS_H

#include <stddef.h>

struct console_asset {
    const char *path;           /* "/index.html", "/app.js" ... */
    const char *type;           /* Content-Type */
    const unsigned char *data;  /* the bytes (NUL after them) */
    size_t len;
};

/* Every file, ending with a row whose path is NULL. */
extern const struct console_asset console_assets[];

#endif

/*
 * sink_main.c - entry point of sluice-sink: parse the command line, run the
 * server, return its exit code.
 *
 * Exit codes: 0 after a normal stop (signal or --exit-after), 64 for a usage
 * or configuration error, 71 when the listener, pidfile or loop could not be
 * set up.
 */
#include <stdlib.h>
#include <string.h>

#include "sink.h"

int main(int argc, char **argv)
{
    struct sink_server srv;
    int rc;

    memset(&srv, 0, sizeof(srv));
    rc = sink_config_parse(&srv.cfg, argc, argv);
    if (rc < 0)
        return SINK_EXIT_OK;
    if (rc != 0) {
        sink_log("try 'sluice-sink --help'");
        return rc;
    }
    return sink_server_run(&srv);
}

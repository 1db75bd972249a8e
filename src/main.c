/* listend: dispatches subcommands: the server (server/) and the
 * command-line clients (cli/). */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "server/server.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"serve", ld_server_main, "run the HTTP API server (default port 7100)"},
    {"keys", ld_cli_keys_main, "manage license keys: init, issue, list, inspect, revoke"},
    {"transcribe", ld_cli_transcribe_main, "transcribe files locally, or through a server with --server"},
    {"stream", ld_cli_stream_main, "stream a file to a server's /v1/listen/stream and print live results"},
    {"adapt", ld_cli_adapt_main, "adapt the model to your recordings and write a model pack (--models)"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: listend <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].help);
    fprintf(f,
            "\n`listend <command> --help` (or `listend help <command>`) describes each command;\n"
            "`listend --version` prints the version (" LD_VERSION ").\n");
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0) {
        fprintf(stderr, "listend: libsodium failed to initialise\n");
        return 1;
    }
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "help") && argc > 2) { /* `listend help serve` = `listend serve --help` */
        for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
            if (!strcmp(argv[2], commands[i].name))
                return commands[i].fn(2, (char *[]){argv[2], "--help", NULL});
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("listend " LD_VERSION "\n");
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "listend: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}

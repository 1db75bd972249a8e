/* The HTTP server: `listend serve`. */
#ifndef LD_SERVER_SERVER_H
#define LD_SERVER_SERVER_H

int ld_server_main(int argc, char **argv);

#endif

/* comm_world for builds without MPI: always the one-process communicator. */
#include "cigl/comm.h"

Comm *comm_world(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return comm_single();
}

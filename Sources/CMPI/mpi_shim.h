/* Open MPI's header, found through pkg-config (ompi-c) by the targets that depend on
 * this one. Only the C target CPoolMPI includes it: Swift cannot see MPI's handle
 * macros (MPI_COMM_WORLD, MPI_BYTE). */
#include <mpi.h>

/* Build identification, set by the Makefile (git commit, compiler flags). */
#ifndef CIGL_VERSION_H
#define CIGL_VERSION_H

#ifndef CIGL_GIT_COMMIT
#define CIGL_GIT_COMMIT "unknown"
#endif
#ifndef CIGL_BUILD_FLAGS
#define CIGL_BUILD_FLAGS "unknown"
#endif
/* What must match across MPI ranks besides the options. */
#define CIGL_BUILD_ID CIGL_GIT_COMMIT " " CIGL_BUILD_FLAGS " " __VERSION__

#endif

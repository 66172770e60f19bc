#include "convert.h"
#include "cigl/error.h"
int convert_imagefolder(const char *src, const char *out, const ImageFolderOptions *o)
{
    (void)out; (void)o;
    return cigl_fail(CIGL_ERR_USAGE, "cannot convert '%s': image folders are not supported yet", src);
}

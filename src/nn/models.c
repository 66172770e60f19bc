/* The architectures: LeNet-300-100, LeNet-5, CIFAR ResNets, WRN-22-2, ResNet-50. */
#include "cigl/error.h"
#include "cigl/model.h"

#include <stdio.h>
#include <string.h>

const char *const model_names[] = {"mlp", "lenet5", "resnet20", "resnet32", "resnet56",
                                   "wrn-22-2", "resnet50", NULL};

static int build_mlp(Model *m)
{
    int x = model_add_flatten(m, "flatten", -1);
    x = model_add_relu(m, "relu1", model_add_linear(m, "fc1", x, 300, 1));
    x = model_add_relu(m, "relu2", model_add_linear(m, "fc2", x, 100, 1));
    return model_add_linear(m, "fc3", x, m->classes, 1);
}

static int build_lenet5(Model *m)
{
    int x = model_add_relu(m, "relu1", model_add_conv(m, "conv1", -1, 6, 5, 1, 2, 1));
    x = model_add_maxpool(m, "pool1", x, 2, 2, 0);
    x = model_add_relu(m, "relu2", model_add_conv(m, "conv2", x, 16, 5, 1, 0, 1));
    x = model_add_maxpool(m, "pool2", x, 2, 2, 0);
    x = model_add_flatten(m, "flatten", x);
    x = model_add_relu(m, "relu3", model_add_linear(m, "fc1", x, 120, 1));
    x = model_add_relu(m, "relu4", model_add_linear(m, "fc2", x, 84, 1));
    return model_add_linear(m, "fc3", x, m->classes, 1);
}

/* conv (no bias) followed by batch norm; the name gets ".conv"/".bn"-style suffixes. */
static int conv_bn(Model *m, const char *prefix, const char *conv, const char *bn, int x,
                   int out_c, int k, int stride, int pad)
{
    char a[40], b[40];
    snprintf(a, sizeof(a), "%s.%s", prefix, conv);
    snprintf(b, sizeof(b), "%s.%s", prefix, bn);
    return model_add_batchnorm(m, b, model_add_conv(m, a, x, out_c, k, stride, pad, 0));
}

static int named(Model *m, int (*add)(Model *, const char *, int), const char *prefix,
                 const char *what, int x)
{
    char n[40];
    snprintf(n, sizeof(n), "%s.%s", prefix, what);
    return add(m, n, x);
}

/* CIFAR-style basic block: conv3x3-BN-ReLU-conv3x3-BN, plus the input or a 1x1 projection
 * (conv + BN) when the shape changes, then ReLU (He et al. 2016, option B shortcuts). */
static int basic_block(Model *m, const char *p, int x, int out_c, int stride)
{
    int y = conv_bn(m, p, "conv1", "bn1", x, out_c, 3, stride, 1);
    y = named(m, model_add_relu, p, "relu1", y);
    y = conv_bn(m, p, "conv2", "bn2", y, out_c, 3, 1, 1);
    int sc = x;
    if (stride != 1 || model_shape(m, x).c != out_c)
        sc = conv_bn(m, p, "shortcut.conv", "shortcut.bn", x, out_c, 1, stride, 0);
    char n[40];
    snprintf(n, sizeof(n), "%s.add", p);
    return named(m, model_add_relu, p, "relu2", model_add_add(m, n, y, sc));
}

static int build_cifar_resnet(Model *m, int blocks)
{
    int x = model_add_relu(m, "relu", conv_bn(m, "stem", "conv", "bn", -1, 16, 3, 1, 1));
    const int widths[3] = {16, 32, 64};
    for (int s = 0; s < 3; s++)
        for (int b = 0; b < blocks; b++) {
            char p[24];
            snprintf(p, sizeof(p), "layer%d.%d", s + 1, b);
            x = basic_block(m, p, x, widths[s], (s > 0 && b == 0) ? 2 : 1);
        }
    x = model_add_flatten(m, "flatten", model_add_global_avgpool(m, "avgpool", x));
    return model_add_linear(m, "fc", x, m->classes, 1);
}

/* Wide-ResNet pre-activation block: BN-ReLU-conv3x3-BN-ReLU-conv3x3 plus the input, or a 1x1
 * convolution of the pre-activated input when the shape changes (Zagoruyko & Komodakis). */
static int wide_block(Model *m, const char *p, int x, int out_c, int stride)
{
    char n[40];
    snprintf(n, sizeof(n), "%s.bn1", p);
    int a = named(m, model_add_relu, p, "relu1", model_add_batchnorm(m, n, x));
    snprintf(n, sizeof(n), "%s.conv1", p);
    int y = model_add_conv(m, n, a, out_c, 3, stride, 1, 0);
    snprintf(n, sizeof(n), "%s.bn2", p);
    y = named(m, model_add_relu, p, "relu2", model_add_batchnorm(m, n, y));
    snprintf(n, sizeof(n), "%s.conv2", p);
    y = model_add_conv(m, n, y, out_c, 3, 1, 1, 0);
    int sc = x;
    if (stride != 1 || model_shape(m, x).c != out_c) {
        snprintf(n, sizeof(n), "%s.shortcut", p);
        sc = model_add_conv(m, n, a, out_c, 1, stride, 0, 0);
    }
    snprintf(n, sizeof(n), "%s.add", p);
    return model_add_add(m, n, y, sc);
}

static int build_wrn(Model *m, int depth, int widen)
{
    const int blocks = (depth - 4) / 6;
    int x = model_add_conv(m, "stem.conv", -1, 16, 3, 1, 1, 0);
    for (int s = 0; s < 3; s++)
        for (int b = 0; b < blocks; b++) {
            char p[24];
            snprintf(p, sizeof(p), "block%d.%d", s + 1, b);
            x = wide_block(m, p, x, (16 << s) * widen, (s > 0 && b == 0) ? 2 : 1);
        }
    x = model_add_relu(m, "relu", model_add_batchnorm(m, "bn", x));
    x = model_add_flatten(m, "flatten", model_add_global_avgpool(m, "avgpool", x));
    return model_add_linear(m, "fc", x, m->classes, 1);
}

/* Bottleneck block (ResNet v1.5: the stride sits on the 3x3 convolution). */
static int bottleneck(Model *m, const char *p, int x, int width, int stride)
{
    const int out_c = 4 * width;
    int y = named(m, model_add_relu, p, "relu1", conv_bn(m, p, "conv1", "bn1", x, width, 1, 1, 0));
    y = named(m, model_add_relu, p, "relu2", conv_bn(m, p, "conv2", "bn2", y, width, 3, stride, 1));
    y = conv_bn(m, p, "conv3", "bn3", y, out_c, 1, 1, 0);
    int sc = x;
    if (stride != 1 || model_shape(m, x).c != out_c)
        sc = conv_bn(m, p, "shortcut.conv", "shortcut.bn", x, out_c, 1, stride, 0);
    char n[40];
    snprintf(n, sizeof(n), "%s.add", p);
    return named(m, model_add_relu, p, "relu3", model_add_add(m, n, y, sc));
}

static int build_resnet50(Model *m)
{
    int x;
    if (m->input.h < 64 || m->input.w < 64) { /* CIFAR stem */
        x = model_add_relu(m, "relu", conv_bn(m, "stem", "conv", "bn", -1, 64, 3, 1, 1));
    } else {                                  /* ImageNet stem */
        x = model_add_relu(m, "relu", conv_bn(m, "stem", "conv", "bn", -1, 64, 7, 2, 3));
        x = model_add_maxpool(m, "maxpool", x, 3, 2, 1);
    }
    const int blocks[4] = {3, 4, 6, 3};
    for (int s = 0; s < 4; s++)
        for (int b = 0; b < blocks[s]; b++) {
            char p[24];
            snprintf(p, sizeof(p), "layer%d.%d", s + 1, b);
            x = bottleneck(m, p, x, 64 << s, (s > 0 && b == 0) ? 2 : 1);
        }
    x = model_add_flatten(m, "flatten", model_add_global_avgpool(m, "avgpool", x));
    return model_add_linear(m, "fc", x, m->classes, 1);
}

static int build_graph(Model *m, const char *name)
{
    if (!strcmp(name, "mlp")) return build_mlp(m);
    if (!strcmp(name, "lenet5")) return build_lenet5(m);
    if (!strcmp(name, "resnet20")) return build_cifar_resnet(m, 3);
    if (!strcmp(name, "resnet32")) return build_cifar_resnet(m, 5);
    if (!strcmp(name, "resnet56")) return build_cifar_resnet(m, 9);
    if (!strcmp(name, "wrn-22-2")) return build_wrn(m, 22, 2);
    if (!strcmp(name, "resnet50")) return build_resnet50(m);
    return -2;
}

int model_build(Model *m, const char *name, Shape input, int classes, int max_batch,
                uint64_t seed)
{
    model_init_empty(m, name, input, classes);
    const int out = build_graph(m, name);
    if (out == -2) {
        char known[256] = "";
        for (int i = 0; model_names[i]; i++) {
            strcat(known, i ? ", " : "");
            strcat(known, model_names[i]);
        }
        model_free(m);
        return cigl_fail(CIGL_ERR_USAGE, "unknown model '%s'; expected one of: %s", name, known);
    }
    /* Every layer must keep a non-empty spatial map, or the input is too small. */
    for (int i = 0; i < m->n_layers; i++) {
        const Shape s = m->layers[i].y;
        if (s.h < 1 || s.w < 1) {
            int h = input.h, w = input.w;
            model_free(m);
            return cigl_fail(CIGL_ERR_USAGE, "model '%s' needs larger inputs than %dx%d (layer "
                             "%d has an empty output); use a dataset with larger images or "
                             "another --model", name, h, w, i);
        }
    }
    if (out < 0 || model_finalize(m, max_batch) != CIGL_OK) {
        model_free(m);
        return CIGL_ERR_RUNTIME;
    }
    model_init_params(m, seed);
    return CIGL_OK;
}

/* The last batch norm of every residual branch (a basic block's bn2, a bottleneck's bn3) gets
 * scale 0, so each block starts as its shortcut (Goyal et al. 2017; the CigL authors' own
 * ResNets do this). Returns the number of batch norms changed; 0: the model has none (refused
 * by the caller). */
int model_zero_init_residual(Model *m)
{
    int n = 0;
    for (int ti = 0; ti < m->n_tensors; ti++) {
        const ParamTensor *t = &m->tensors[ti];
        if (t->kind != PARAM_BN_GAMMA || strncmp(t->name, "layer", 5)) continue;
        const char *bn = strrchr(m->layers[t->layer].name, '.');
        const int last = !strcmp(m->name, "resnet50") ? bn && !strcmp(bn, ".bn3")
                                                       : bn && !strcmp(bn, ".bn2");
        if (!last || strstr(m->layers[t->layer].name, "shortcut")) continue;
        memset(m->params + t->off, 0, sizeof(float) * t->len);
        n++;
    }
    return n;
}

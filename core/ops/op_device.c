/* op_device.c — `to`: a tensor on another device, as an op: the gradient
 * goes back to the device the input came from. */
#include <stdio.h>
#include "autograd/autograd_internal.h"
#include "kernels/kernels.h"

static int to_backward(empo_node *node, empo_tensor *g, empo_tensor **gin) {
    return empo_to_device_nograd(&gin[0], g, (int)node->i[0]);
}

int empo_to(empo_tensor **out, empo_tensor *x, int device) {
    if (!x) return empo_fail(EMPO_E_ARG, "to: NULL tensor");
    const int from = empo_tensor_device(x);
    if (from == device) {
        empo_tensor_retain(x);
        *out = x;
        return EMPO_OK;
    }
    empo_tensor *y = NULL;
    EMPO_TRY(empo_to_device_nograd(&y, x, device));
    int st = EMPO_OK;
    empo_node *node = empo_node_record("to", to_backward, y, 1, &x, &st);
    if (node) node->i[0] = from;
    return empo_tensor_handover(out, y, st);
}

int empo_device_available(int device, char *why, int whylen) {
    if (device == EMPO_CPU) return 1;
    if (empo_kernels_device(device)) return 1;
    if (why && whylen > 0) snprintf(why, (size_t)whylen, "%s", empo_kernels_device_why());
    return 0;
}

int empo_cuda_allow_tf32(int allow, int *previous) {
    int prev = empo_kernels_cuda_tf32(allow);
    if (prev < 0) return empo_fail(EMPO_E_DEVICE, "cuda_allow_tf32: %s", empo_kernels_device_why());
    if (previous) *previous = prev;
    return EMPO_OK;
}

int empo_device_describe(int device, char *buf, int len) {
    const empo_kernel_table *k = empo_kernels_device(device);
    if (device == EMPO_CPU || !k || !k->device)
        return empo_fail(EMPO_E_DEVICE, "device %d: %s", device,
                         device == EMPO_CPU ? "the cpu has no device description" : empo_kernels_device_why());
    if (k->device->describe(0, buf, (size_t)len) != 0)
        return empo_fail(EMPO_E_DEVICE, "device %d: cannot describe it: %s", device, k->device->last_error());
    return EMPO_OK;
}

int empo_device_total_bytes(int device, int64_t *bytes) {
    const empo_kernel_table *k = empo_kernels_device(device);
    if (device == EMPO_CPU || !k || !k->device)
        return empo_fail(EMPO_E_DEVICE, "device %d: %s", device,
                         device == EMPO_CPU ? "the cpu is not a device" : empo_kernels_device_why());
    const long long total = k->device->total_bytes();
    if (total < 0) return empo_fail(EMPO_E_DEVICE, "device %d: its memory is unknown: %s", device, k->device->last_error());
    *bytes = (int64_t)total;
    return EMPO_OK;
}

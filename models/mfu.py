"""Model FLOPs utilisation: achieved training FLOP/s over the accelerator's dense bf16 peak."""

import torch

# Dense bf16 tensor-core peaks (no sparsity), first match of the device name wins.
BF16_PEAK_FLOPS = (
    ("H100 PCIe", 756e12),
    ("H100 NVL", 835e12),
    ("H100", 989e12),
    ("H200", 989e12),
    ("A100", 312e12),
)


def peak_flops(device_name):
    """The bf16 peak of a device by its name (torch.cuda.get_device_name), or None if unknown."""
    for key, peak in BF16_PEAK_FLOPS:
        if key in device_name:
            return peak
    return None


def estimate_mfu(flops_per_s, device):
    """flops_per_s as a fraction of the device's bf16 peak; None on CPU or an unknown accelerator."""
    device = torch.device(device)
    if device.type != "cuda":
        return None
    peak = peak_flops(torch.cuda.get_device_name(device))
    return None if peak is None else flops_per_s / peak

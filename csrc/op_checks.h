// Argument checks shared by the CPU and CUDA bindings. The Python wrappers validate first with
// friendlier messages; these keep direct torch.ops callers from reaching a kernel with bad input.
// TORCH_CHECK_TYPE / TORCH_CHECK_VALUE surface in Python as TypeError / ValueError.
#pragma once

#include <optional>

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include "bitkernels/bitstats.h"

namespace bitkernels {

inline bool is_stored_float(c10::ScalarType t) {
  return t == c10::kFloat || t == c10::kBFloat16 || t == c10::kHalf;
}

inline void check_bitflip_stats_args(const at::Tensor& old, const at::Tensor& new_,
                                     const std::optional<at::Tensor>& update,
                                     const at::Tensor& counters, const at::Tensor& sums) {
  TORCH_CHECK_TYPE(is_stored_float(old.scalar_type()),
                   "bitflip_stats: old must be float32, bfloat16 or float16, got ", old.scalar_type());
  TORCH_CHECK_TYPE(new_.scalar_type() == old.scalar_type(), "bitflip_stats: new has dtype ",
                   new_.scalar_type(), " but old has ", old.scalar_type());
  TORCH_CHECK_VALUE(new_.sizes() == old.sizes(), "bitflip_stats: new has shape ", new_.sizes(),
                    " but old has ", old.sizes());
  TORCH_CHECK_VALUE(new_.device() == old.device(), "bitflip_stats: new is on ", new_.device(),
                    " but old is on ", old.device());
  if (update.has_value()) {
    TORCH_CHECK_TYPE(update->scalar_type() == c10::kFloat,
                     "bitflip_stats: update must be float32, got ", update->scalar_type());
    TORCH_CHECK_VALUE(update->sizes() == old.sizes(), "bitflip_stats: update has shape ",
                      update->sizes(), " but old has ", old.sizes());
    TORCH_CHECK_VALUE(update->device() == old.device(), "bitflip_stats: update is on ",
                      update->device(), " but old is on ", old.device());
  }
  TORCH_CHECK_TYPE(counters.scalar_type() == c10::kLong, "bitflip_stats: counters must be int64");
  TORCH_CHECK_VALUE(counters.dim() == 1 && counters.numel() == stats::kNumCounters &&
                        counters.is_contiguous(),
                    "bitflip_stats: counters must be a contiguous 1-D tensor of ",
                    stats::kNumCounters, " elements, got shape ", counters.sizes());
  TORCH_CHECK_TYPE(sums.scalar_type() == c10::kDouble, "bitflip_stats: sums must be float64");
  TORCH_CHECK_VALUE(sums.dim() == 1 && sums.numel() == stats::kNumSums && sums.is_contiguous(),
                    "bitflip_stats: sums must be a contiguous 1-D tensor of ", stats::kNumSums,
                    " elements, got shape ", sums.sizes());
  TORCH_CHECK_VALUE(counters.device() == old.device() && sums.device() == old.device(),
                    "bitflip_stats: counters and sums must be on ", old.device());
}

}  // namespace bitkernels

// Argument checks shared by the CPU and CUDA bindings. The Python wrappers validate first with
// friendlier messages; these keep direct torch.ops callers from reaching a kernel with bad input.
// TORCH_CHECK_TYPE / TORCH_CHECK_VALUE surface in Python as TypeError / ValueError.
#pragma once

#include <initializer_list>
#include <optional>
#include <utility>

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

struct NamedList {
  const char* name;
  at::TensorList tensors;
  bool required;  // must hold one tensor per parameter (else: empty or one per parameter)
};

// Checks the argument lists of a fused step op: same-length lists, one stored float dtype and
// one device for the parameters, grads in the parameter dtype, fp32 states, Kahan buffers in the
// parameter dtype, matching sizes, contiguity, and a well-formed statistics table.
inline void check_step_args(const char* op, at::TensorList params, at::TensorList grads,
                            std::initializer_list<NamedList> states, at::TensorList kahan_comps,
                            const std::optional<at::Tensor>& counters,
                            const std::optional<at::Tensor>& sums, at::IntArrayRef stat_rows,
                            at::IntArrayRef rng_keys, const std::optional<at::Tensor>& grad_scale,
                            const std::optional<at::Tensor>& found_inf) {
  const size_t n = params.size();
  TORCH_CHECK_VALUE(grads.size() == n, op, ": got ", n, " params but ", grads.size(), " grads");
  TORCH_CHECK_VALUE(rng_keys.size() == n, op, ": rng_keys needs one entry per param");
  if (n == 0) return;
  const c10::ScalarType dtype = params[0].scalar_type();
  const c10::Device device = params[0].device();
  TORCH_CHECK_TYPE(is_stored_float(dtype), op, ": params must be float32, bfloat16 or float16, got ",
                   dtype);
  auto check_like = [&](const at::Tensor& t, const char* name, size_t i, c10::ScalarType want,
                        int64_t numel) {
    TORCH_CHECK_TYPE(t.scalar_type() == want, op, ": ", name, "[", i, "] has dtype ",
                     t.scalar_type(), ", expected ", want);
    TORCH_CHECK_VALUE(t.device() == device, op, ": ", name, "[", i, "] is on ", t.device(),
                      " but params[0] is on ", device);
    TORCH_CHECK_VALUE(t.numel() == numel, op, ": ", name, "[", i, "] has ", t.numel(),
                      " elements, expected ", numel);
    TORCH_CHECK_VALUE(t.is_contiguous(), op, ": ", name, "[", i, "] must be contiguous");
  };
  for (size_t i = 0; i < n; ++i) {
    check_like(params[i], "params", i, dtype, params[i].numel());
    check_like(grads[i], "grads", i, dtype, params[i].numel());
    TORCH_CHECK_VALUE(grads[i].sizes() == params[i].sizes(), op, ": grads[", i, "] has shape ",
                      grads[i].sizes(), " but params[", i, "] has ", params[i].sizes());
  }
  for (const NamedList& list : states) {
    if (!list.required && list.tensors.empty()) continue;
    TORCH_CHECK_VALUE(list.tensors.size() == n, op, ": ", list.name, " needs one tensor per param");
    for (size_t i = 0; i < n; ++i)
      check_like(list.tensors[i], list.name, i, c10::kFloat, params[i].numel());
  }
  if (!kahan_comps.empty()) {
    TORCH_CHECK_VALUE(kahan_comps.size() == n, op, ": kahan_comps needs one tensor per param");
    for (size_t i = 0; i < n; ++i)
      check_like(kahan_comps[i], "kahan_comps", i, dtype, params[i].numel());
  }
  TORCH_CHECK_VALUE(counters.has_value() == sums.has_value(), op,
                    ": counters and sums go together");
  if (counters.has_value()) {
    TORCH_CHECK_TYPE(counters->scalar_type() == c10::kLong && sums->scalar_type() == c10::kDouble,
                     op, ": counters must be int64 and sums float64");
    TORCH_CHECK_VALUE(counters->dim() == 2 && counters->size(1) == stats::kNumCounters &&
                          counters->is_contiguous(),
                      op, ": counters must be a contiguous [rows, ", stats::kNumCounters,
                      "] tensor, got ", counters->sizes());
    TORCH_CHECK_VALUE(sums->dim() == 2 && sums->size(0) == counters->size(0) &&
                          sums->size(1) == stats::kNumSums && sums->is_contiguous(),
                      op, ": sums must be a contiguous [rows, ", stats::kNumSums, "] tensor");
    TORCH_CHECK_VALUE(counters->device() == device && sums->device() == device, op,
                      ": counters and sums must be on ", device);
    TORCH_CHECK_VALUE(stat_rows.size() == n, op, ": stat_rows needs one entry per param");
    for (size_t i = 0; i < n; ++i)
      TORCH_CHECK_VALUE(stat_rows[i] >= 0 && stat_rows[i] < counters->size(0), op,
                        ": stat_rows[", i, "] = ", stat_rows[i], " is outside the table");
  }
  for (const auto* scalar : {&grad_scale, &found_inf}) {
    if (!scalar->has_value()) continue;
    const char* name = scalar == &grad_scale ? "grad_scale" : "found_inf";
    TORCH_CHECK_TYPE((*scalar)->scalar_type() == c10::kFloat, op, ": ", name, " must be float32");
    TORCH_CHECK_VALUE((*scalar)->numel() == 1, op, ": ", name, " must hold one element");
    TORCH_CHECK_VALUE((*scalar)->device() == device, op, ": ", name, " must be on ", device);
  }
}

}  // namespace bitkernels

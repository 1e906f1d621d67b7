// bitkernels::adam_step on CUDA (torch-free launcher; bindings.cpp calls it).
#include "step_kernel.cuh"

namespace bitkernels {
namespace cuda {

cudaError_t launch_adam_step(const StepLaunch& args, const AdamHyper& h, cudaStream_t stream) {
  return h.amsgrad.mask ? launch_for_format<AdamElement<true>>(args, h, stream)
                        : launch_for_format<AdamElement<false>>(args, h, stream);
}

}  // namespace cuda
}  // namespace bitkernels

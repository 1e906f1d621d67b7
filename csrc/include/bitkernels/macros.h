// Portability macros for code shared by the host compiler and nvcc.
#pragma once

#if defined(__CUDACC__) || defined(__HIPCC__)
#define BK_HD __host__ __device__
#define BK_DEVICE_CODE 1
#else
#define BK_HD
#define BK_DEVICE_CODE 0
#endif

// The core's functions are small pieces of per-element loops: they must be inlined for the
// loops to vectorize (CPU) or stay in registers (CUDA), whatever the inliner's size budget says.
#if defined(__CUDACC__)
#define BK_INLINE BK_HD __forceinline__
#elif defined(__GNUC__) || defined(__clang__)
#define BK_INLINE inline __attribute__((always_inline))
#else
#define BK_INLINE inline
#endif

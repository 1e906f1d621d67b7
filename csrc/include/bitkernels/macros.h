// Portability macros for code shared by the host compiler and nvcc.
#pragma once

#if defined(__CUDACC__) || defined(__HIPCC__)
#define BK_HD __host__ __device__
#define BK_DEVICE_CODE 1
#else
#define BK_HD
#define BK_DEVICE_CODE 0
#endif

#define BK_INLINE BK_HD inline

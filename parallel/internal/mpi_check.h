// MPI_CHECK(call, "what"): a failed MPI call is fatal and names the call, the MPI error string,
// this rank and host (via REEL_CHECK). Communicators set MPI_ERRORS_RETURN so that errors reach it.
#pragma once

#include <mpi.h>

#include <string>

#include "common/error.h"

namespace reel::parallel::detail {

inline std::string mpi_error_string(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) return cat("MPI error ", code);
  return std::string(text, length);
}

}  // namespace reel::parallel::detail

#define MPI_CHECK(call, ...)                                                                         \
  do {                                                                                               \
    int reel_mpi_rc_ = (call);                                                                       \
    REEL_CHECK(reel_mpi_rc_ == MPI_SUCCESS, ::reel::cat(__VA_ARGS__), " failed: ",                   \
               ::reel::parallel::detail::mpi_error_string(reel_mpi_rc_));                            \
  } while (0)

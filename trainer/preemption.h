// Preemption: SIGUSR1 (what Slurm's `--signal=B:USR1@T` sends before a time limit, and what
// mpirun forwards to every rank) and SIGTERM (Slurm's preemption, scancel, a node drain) ask a
// training run to finish its current step, write a checkpoint and exit with kPreemptedExit,
// which launch/slurm/train.sbatch and launch/reel-run turn into a requeue or a restart.
#pragma once

namespace reel::trainer {

// The exit code of a run stopped by a signal after writing its checkpoint (EX_TEMPFAIL: try
// again later; --resume continues exactly).
constexpr int kPreemptedExit = 75;

// Installs the SIGUSR1 and SIGTERM handlers (idempotent). The handlers only record the signal.
void install_preemption_handlers();

// The last signal received since the handlers were installed, or 0.
int preemption_signal();

// Records `signal` as if it had been received (for REEL_TEST_PREEMPT_AT_STEP and unit tests).
void request_preemption(int signal);

}  // namespace reel::trainer

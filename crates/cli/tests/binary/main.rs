//! Tests of the built `koogate` binary, in one test binary: its commands as a merchant runs them, and
//! the SIGKILL crash test.

mod commands;
mod crash;

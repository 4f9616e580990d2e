//! One module per view. Each holds its own state, handles its own keys
//! (`key`, which may ask the fetch worker for something) and draws itself
//! (`draw`, which reads and never changes state). `widgets` is what they
//! draw with.

pub mod fleet;
pub mod gpus;
pub mod incidents;
pub mod jobs;
pub mod metrics;
pub mod overview;
pub mod processes;
pub mod widgets;

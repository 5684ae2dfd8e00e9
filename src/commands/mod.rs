//! One file per command: the default search, `bench`, `compare` and `moons` (`choice-list`
//! lives in its feature folder, `src/choice_list/`). Each takes plain options from `cli.rs`.
pub mod bench;
pub mod compare;
pub mod moons;
pub mod search;
pub mod search_options;

//! The command line, declared once with clap: parsing, per-command `--help`, suggestions for
//! mistyped words, and the shell completions and man page (`completions SHELL`, `manpage`)
//! generated from the same declaration.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

const EXIT_CODES: &str = "\
Exit codes: 0 ok, 1 I/O, 2 usage, 3 not-found, 10 wrong-passphrase, 11 tampered, 12 truncated,
13 unsupported, 14 not-a-backup, 15 unsafe-params, 16 unsafe-path, 70 internal (a bug: please report it).";

/// Restores Qubes OS backups (formats 2 to 4, Qubes R2 to R4.3) without Qubes.
#[derive(Parser, Debug)]
#[command(name = "qubes-rescue", version, after_help = EXIT_CODES, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Read the passphrase from the first line of FILE (- = stdin); else $QUBES_RESCUE_PASSPHRASE;
    /// else it is asked for
    #[arg(long, global = true, value_name = "FILE")]
    pub passphrase_file: Option<String>,

    /// Memory one scrypt KDF may use, in MiB; parameters needing more still open, recomputing
    /// what does not fit (slower)
    #[arg(long, global = true, value_name = "MIB", default_value_t = 4096)]
    pub max_kdf_memory: u64,

    /// Chunks decrypted in parallel (default: CPUs, within memory)
    #[arg(long, global = true, value_name = "N")]
    pub workers: Option<usize>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Verify the header and list the qubes (name, class, label, template, size, volumes)
    List {
        backup: PathBuf,
        /// Print a JSON array of objects
        #[arg(long)]
        json: bool,
    },
    /// Authenticate and fully decode the named qubes (all when none); write nothing
    Verify {
        backup: PathBuf,
        qubes: Vec<String>,
    },
    /// Restore the named qubes (all when none) under DIR/<qube>/
    Extract {
        backup: PathBuf,
        qubes: Vec<String>,
        /// The output folder
        #[arg(short, long, value_name = "DIR")]
        output: PathBuf,
        /// Keep a failed volume as <name>.partial instead of removing it
        #[arg(long)]
        keep_partial: bool,
        /// Restore what can be restored from a damaged volume, as <name>.salvaged with the lost
        /// byte ranges in <name>.salvage.json
        #[arg(long)]
        salvage: bool,
    },
    /// List a folder inside a qube's volume (default private.img) or dom0's home
    Ls {
        backup: PathBuf,
        /// QUBE or QUBE/VOLUME
        #[arg(value_name = "QUBE[/VOLUME]")]
        spec: String,
        /// An absolute path inside the volume (default /)
        #[arg(value_parser = absolute)]
        path: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
        /// Browse partition N of a disk image (default: its Linux ext4 one)
        #[arg(long, value_name = "N")]
        partition: Option<u32>,
    },
    /// Copy one file or folder out of a qube's volume or dom0's home
    Get {
        backup: PathBuf,
        #[arg(value_name = "QUBE[/VOLUME]")]
        spec: String,
        /// An absolute path inside the volume
        #[arg(value_parser = absolute)]
        path: String,
        /// Where to write it (an existing folder receives it under its own name)
        #[arg(short, long, value_name = "DEST")]
        output: PathBuf,
        /// Browse partition N of a disk image (default: its Linux ext4 one)
        #[arg(long, value_name = "N")]
        partition: Option<u32>,
    },
    /// Print shell completions for SHELL (bash, zsh, fish, elvish, powershell)
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff)
    Manpage,
}

fn absolute(p: &str) -> Result<String, String> {
    if p.starts_with('/') {
        Ok(p.to_string())
    } else {
        Err("PATH must be absolute (start with /)".into())
    }
}

/// What the commands read of the arguments, whichever command it is.
pub struct Args {
    pub command: &'static str,
    pub backup: PathBuf,
    /// `verify`/`extract`: qube names; `ls`/`get`: `QUBE[/VOLUME]` then the path.
    pub qubes: Vec<String>,
    pub out: Option<PathBuf>,
    pub json: bool,
    pub keep_partial: bool,
    pub salvage: bool,
    pub passphrase_file: Option<String>,
    pub max_kdf_memory: u64,
    pub workers: Option<usize>,
    pub partition: Option<u32>,
}

/// Parses the command line; prints help, version, completions or the man page and exits
/// where asked; a usage error exits with code 2 (clap's own message, with suggestions).
pub fn parse() -> Args {
    let cli = Cli::parse();
    let mut args = Args {
        command: "",
        backup: PathBuf::new(),
        qubes: Vec::new(),
        out: None,
        json: false,
        keep_partial: false,
        salvage: false,
        passphrase_file: cli.passphrase_file,
        max_kdf_memory: cli.max_kdf_memory.saturating_mul(1 << 20),
        workers: cli.workers,
        partition: None,
    };
    match cli.command {
        Command::List { backup, json } => {
            (args.command, args.backup, args.json) = ("list", backup, json);
        }
        Command::Verify { backup, qubes } => {
            (args.command, args.backup, args.qubes) = ("verify", backup, qubes);
        }
        Command::Extract { backup, qubes, output, keep_partial, salvage } => {
            (args.command, args.backup, args.qubes, args.out) = ("extract", backup, qubes, Some(output));
            (args.keep_partial, args.salvage) = (keep_partial, salvage);
        }
        Command::Ls { backup, spec, path, json, partition } => {
            (args.command, args.backup, args.json, args.partition) = ("ls", backup, json, partition);
            args.qubes = std::iter::once(spec).chain(path).collect();
        }
        Command::Get { backup, spec, path, output, partition } => {
            (args.command, args.backup, args.out, args.partition) = ("get", backup, Some(output), partition);
            args.qubes = vec![spec, path];
        }
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "qubes-rescue", &mut std::io::stdout());
            std::process::exit(0);
        }
        Command::Manpage => {
            let cmd = <Cli as clap::CommandFactory>::command();
            let code = match clap_mangen::Man::new(cmd).render(&mut std::io::stdout()) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("qubes-rescue: writing the man page: {e}");
                    1
                }
            };
            std::process::exit(code);
        }
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_declaration_is_consistent() {
        Cli::command().debug_assert();
    }
}

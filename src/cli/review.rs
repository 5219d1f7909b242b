//! `qualscribe review`: imports the output folder into its project database (decisions already
//! made are kept), then writes the reviewed exports or serves the review page until Ctrl-C.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Args;

use qualscribe::review::{self, Project, ReviewServer, ServeOptions, server};

#[derive(Args, Clone)]
pub struct ReviewArgs {
    /// Output folder of `qualscribe run` or `batch` (the review database is kept in it)
    #[arg(value_name = "FOLDER")]
    folder: PathBuf,
    /// Language of the page: es or en
    #[arg(long, default_value = "es", value_name = "LANG")]
    lang: review::Lang,
    /// Print the page's address without opening a browser
    #[arg(long)]
    no_browser: bool,
    /// Write the reviewed exports into FOLDER/reviewed/ and exit, without serving the page
    #[arg(long)]
    export_only: bool,
}

pub fn run(args: &ReviewArgs) -> Result<ExitCode> {
    if !args.folder.is_dir() {
        bail!(
            "{} is not a folder: give the -o folder of `qualscribe run` or `batch`",
            args.folder.display()
        );
    }
    let who = server::default_reviewer();
    let mut project = Project::open(&args.folder.join(review::PROJECT_DB))?;
    let summary = project.import_output(&args.folder, &who)?;
    eprintln!(
        "{}: {} new recordings, {} new passages, {} new codes (earlier decisions kept)",
        project.path().display(),
        summary.new_recordings,
        summary.new_passages,
        summary.new_codes
    );
    if args.export_only {
        let out = args.folder.join(server::REVIEWED_DIR);
        for p in review::export_reviewed(&project, &out)? {
            println!("wrote {}", p.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let opts = ServeOptions {
        lang: args.lang,
        who,
        ..ServeOptions::default()
    };
    let server = ReviewServer::start(project, &opts)?;
    // Scripts read this line from a pipe: flush it now, not when the buffer fills.
    println!("review page: {}", server.url());
    std::io::stdout().flush()?;
    if !args.no_browser && !server::open_browser(server.url()) {
        eprintln!("could not start a browser: open the address above");
    }
    eprintln!("serving until Ctrl-C");
    server.join();
    Ok(ExitCode::SUCCESS)
}

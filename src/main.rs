use clap::Parser;
use oauthlink::config::{Cli, Command, ServeArgs};
use oauthlink::{app, cli, graphql, server, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Cli::parse();
    telemetry::init(&args.config.log, args.config.log_format);
    let command = args.command.clone().unwrap_or_else(|| {
        // `oauthlink` alone serves, with the serve flags taken from the environment.
        Command::Serve(ServeArgs::from_env())
    });
    match command {
        Command::Schema => {
            print!("{}", graphql::sdl());
            Ok(())
        }
        Command::Migrate => {
            let config = oauthlink::config::Config {
                auto_migrate: true,
                ..args.config.clone()
            };
            app::open(&config).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Serve(serve) => server::run(&args.config, &serve).await,
        other => {
            let service = app::open(&args.config).await?;
            cli::run(&service, &args.config, other).await
        }
    }
}

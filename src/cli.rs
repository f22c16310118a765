//! The admin subcommands.
use anyhow::Context;
use secrecy::ExposeSecret;

use crate::config::{Command, Config, SourceCommand, TokenCommand, UserCommand};
use crate::crypto::{generate_api_key, hash_api_key};
use crate::custody;
use crate::domain::Service;
use crate::domain::model::{PolicyEngineMode, TokenAuthMethod, UserMatchingMode};
use crate::domain::permission::Permission;
use crate::storage::{NewSource, NewToken, NewUser, TokenEndpointChange};

/// The first superuser's name, as authentik's bootstrap names it.
pub const BOOTSTRAP_USERNAME: &str = "akadmin";
pub const BOOTSTRAP_TOKEN_IDENTIFIER: &str = "authentik-bootstrap-token";

/// Creates `akadmin` and its token on an empty database. Prints a generated key once.
pub async fn bootstrap(service: &Service, token: Option<&str>) -> anyhow::Result<()> {
    let key = token.map(str::to_owned).unwrap_or_else(generate_api_key);
    let hash = hash_api_key(&key);
    let created = service
        .store()
        .bootstrap(
            BOOTSTRAP_USERNAME,
            NewToken {
                identifier: BOOTSTRAP_TOKEN_IDENTIFIER,
                key_hash: &hash,
                intent: "api",
                expires: None,
                description: "Bootstrap token",
            },
        )
        .await?;
    if created {
        if token.is_none() {
            println!("Created superuser {BOOTSTRAP_USERNAME}. Its API key (shown only now): {key}");
        } else {
            tracing::info!(
                "created superuser {BOOTSTRAP_USERNAME} with the configured bootstrap token"
            );
        }
    }
    Ok(())
}

pub async fn run(service: &Service, _config: &Config, command: Command) -> anyhow::Result<()> {
    let store = service.store();
    match command {
        Command::Serve(_) | Command::Schema | Command::Migrate => unreachable!("handled by main"),
        Command::Rekey { batch } => rekey(service, batch).await?,
        Command::User(UserCommand::Create {
            username,
            name,
            email,
            superuser,
        }) => {
            let id = store
                .create_user(NewUser {
                    username: &username,
                    name: &name,
                    email: &email,
                    is_superuser: superuser,
                })
                .await
                .with_context(|| {
                    format!("cannot create user {username:?} (does it exist already?)")
                })?;
            println!("{id}");
        }
        Command::User(UserCommand::Grant {
            username,
            permissions,
        }) => {
            let id = user_id(service, &username).await?;
            let permissions = parse_permissions(&permissions)?;
            store.grant(id, &permissions).await?;
        }
        Command::User(UserCommand::Revoke {
            username,
            permissions,
        }) => {
            let id = user_id(service, &username).await?;
            let permissions = parse_permissions(&permissions)?;
            store.revoke(id, &permissions).await?;
        }
        Command::Token(TokenCommand::Revoke { identifier }) => {
            if !store.delete_token(&identifier).await? {
                anyhow::bail!("no token {identifier:?}");
            }
        }
        Command::User(UserCommand::Deactivate { username }) => {
            let id = user_id(service, &username).await?;
            store.set_user_active(id, false).await?;
        }
        Command::User(UserCommand::Subject {
            username,
            issuer,
            set,
            clear,
        }) => {
            let id = user_id(service, &username).await?;
            let issuer = issuer
                .map(|i| i.trim().to_owned())
                .filter(|i| !i.is_empty());
            if let Some(issuer) = &issuer {
                anyhow::ensure!(
                    !issuer.contains(','),
                    "several issuers configured: pass --issuer with one of them"
                );
            }
            // Shown: the subjects at every issuer, configured or not.
            if set.is_none() && !clear {
                for (at, subject) in store.subjects_of(id).await? {
                    println!("{at}\t{subject}");
                }
                return Ok(());
            }
            let issuer = issuer.context("--issuer is required (or OAUTHLINK_OIDC_ISSUER)")?;
            if let Some(subject) = &set {
                anyhow::ensure!(
                    !subject.is_empty()
                        && subject.chars().count() <= crate::oidc::MAX_SUBJECT_CHARS,
                    "a subject is 1 to {} characters",
                    crate::oidc::MAX_SUBJECT_CHARS
                );
                match store.subject_owner(&issuer, subject).await? {
                    Some(owner) if owner != id => {
                        anyhow::bail!(
                            "subject {subject:?} at {issuer} is linked to another user (pk {owner})"
                        )
                    }
                    _ => {}
                }
            }
            store.set_subject(id, &issuer, set.as_deref()).await?;
            match set {
                Some(subject) => println!("{username} is {subject:?} at {issuer}"),
                None => println!("{username} has no subject at {issuer}"),
            }
        }
        Command::Token(TokenCommand::Create {
            username,
            identifier,
            expires,
            description,
        }) => {
            let id = user_id(service, &username).await?;
            let key = generate_api_key();
            let identifier = identifier
                .unwrap_or_else(|| format!("{username}-{}", uuid::Uuid::new_v4().simple()));
            store
                .create_token(
                    id,
                    NewToken {
                        identifier: &identifier,
                        key_hash: &hash_api_key(&key),
                        intent: "api",
                        expires,
                        description: &description,
                    },
                )
                .await
                .with_context(|| format!("cannot create token {identifier:?}"))?;
            println!("{key}");
        }
        Command::Source(SourceCommand::Create {
            name,
            slug,
            provider_type,
            authorization_url,
            access_token_url,
            token_auth_method,
            profile_url,
            consumer_key,
            consumer_secret,
            policy_engine_mode,
            user_matching_mode,
            disabled,
        }) => {
            let token_auth_method = parse_auth_method(&token_auth_method)?;
            if let Some(url) = &access_token_url {
                check_token_url(url)?;
            }
            if slug.is_empty()
                || slug.len() > 50
                || !slug
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                anyhow::bail!("slug must be 1-50 characters of letters, digits, '-' or '_'");
            }
            let policy_engine_mode = PolicyEngineMode::parse(&policy_engine_mode)
                .context("policy engine mode must be `all` or `any`")?;
            let user_matching_mode =
                UserMatchingMode::parse(&user_matching_mode).with_context(|| {
                    let known: Vec<_> = UserMatchingMode::ALL.iter().map(|m| m.as_str()).collect();
                    format!("user matching mode must be one of {}", known.join(", "))
                })?;
            let uuid = uuid::Uuid::new_v4();
            let slug_of_created = slug.clone();
            store
                .create_source_with(
                    uuid,
                    NewSource {
                        consumer_secret: consumer_secret
                            .map(|s| service.seal_consumer_secret(uuid, s.expose_secret())),
                        user_path_template: "goauthentik.io/sources/%(slug)s".to_owned(),
                        name: name.clone(),
                        slug: slug.clone(),
                        enabled: !disabled,
                        provider_type,
                        authorization_url,
                        access_token_url,
                        profile_url,
                        consumer_key,
                        policy_engine_mode,
                        user_matching_mode,
                        icon: None,
                    },
                )
                .await
                .with_context(|| {
                    format!("cannot create source {name:?} (name and slug must be unique)")
                })?;
            if token_auth_method != TokenAuthMethod::default() {
                let change = TokenEndpointChange {
                    auth_method: Some(token_auth_method),
                    ..Default::default()
                };
                store
                    .update_token_endpoint(&slug_of_created, change)
                    .await?;
            }
            println!("{uuid}");
        }
        Command::Source(SourceCommand::Update {
            slug,
            access_token_url,
            token_auth_method,
            consumer_key,
            consumer_secret,
        }) => {
            if let Some(url) = &access_token_url {
                check_token_url(url)?;
            }
            let auth_method = token_auth_method
                .as_deref()
                .map(parse_auth_method)
                .transpose()?;
            let uuid = store
                .source_uuid(&slug)
                .await?
                .with_context(|| format!("no source with slug {slug:?}"))?;
            let change = TokenEndpointChange {
                access_token_url,
                auth_method,
                consumer_key,
                consumer_secret: consumer_secret
                    .map(|s| service.seal_consumer_secret(uuid, s.expose_secret())),
            };
            if !store.update_token_endpoint(&slug, change).await? {
                anyhow::bail!("no source with slug {slug:?}");
            }
        }
    }
    Ok(())
}

fn parse_auth_method(value: &str) -> anyhow::Result<TokenAuthMethod> {
    TokenAuthMethod::parse(value).with_context(|| {
        let known: Vec<_> = TokenAuthMethod::ALL.iter().map(|m| m.as_str()).collect();
        format!("token auth method must be one of {}", known.join(", "))
    })
}

fn check_token_url(url: &str) -> anyhow::Result<()> {
    crate::token_endpoint::check_url(url)
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("--access-token-url: {e}"))
}

fn parse_permissions(codenames: &[String]) -> anyhow::Result<Vec<Permission>> {
    codenames
        .iter()
        .map(|p| p.parse::<Permission>().map_err(anyhow::Error::msg))
        .collect()
}

/// `oauthlink rekey`: counts on stdout, each value that did not open on stderr.
async fn rekey(service: &Service, batch: u64) -> anyhow::Result<()> {
    let report = custody::rekey(service, batch).await?;
    println!("current key: {}", service.keyring().current().id);
    println!(
        "user_oauth_source_connections.access_token: {}",
        report.tokens
    );
    println!(
        "user_oauth_source_connections.refresh_token: {}",
        report.refresh_tokens
    );
    println!("sources.consumer_secret: {}", report.secrets);
    for (key, n) in custody::old_key_use(service).await? {
        if n == 0 {
            println!(
                "old key {key}: seals nothing any more; it may be removed from the configuration"
            );
        } else {
            println!("old key {key}: still seals {n} values");
        }
    }
    let failed: Vec<_> = report
        .tokens
        .failed
        .iter()
        .chain(&report.refresh_tokens.failed)
        .chain(&report.secrets.failed)
        .collect();
    for (row, reason) in &failed {
        eprintln!("{row}: {reason}");
    }
    if !failed.is_empty() {
        anyhow::bail!(
            "{} stored values did not open and were left as they are",
            failed.len()
        );
    }
    Ok(())
}

async fn user_id(service: &Service, username: &str) -> anyhow::Result<i32> {
    service
        .store()
        .user_id_by_username(username)
        .await?
        .with_context(|| format!("no user named {username:?}"))
}

//! `swarmscope keys add`: make a key, print it once, store only its hash.

use anyhow::Context;
use swarmscope_server::auth::{generate_key, hash_key};
use swarmscope_server::Config;
use toml_edit::{value, Array, ArrayOfTables, DocumentMut, Item, Table};

use crate::cli::{KeysAddArgs, RoleArg};
use crate::UsageError;

pub(crate) fn add(args: KeysAddArgs) -> anyhow::Result<()> {
    // Admin and metrics keys are not bound to a tenant.
    let admin = args
        .roles
        .iter()
        .any(|r| matches!(r, RoleArg::Admin | RoleArg::Metrics));
    match (&args.tenant, admin) {
        (Some(_), true) => {
            return Err(UsageError(
                "admin and metrics keys are not bound to a tenant: drop --tenant".into(),
            )
            .into())
        }
        (None, false) => {
            return Err(UsageError("--tenant is required for ingest and read keys".into()).into())
        }
        (Some(t), false) if t.is_empty() || t.len() > 128 => {
            return Err(UsageError("--tenant must be 1 to 128 characters".into()).into())
        }
        _ => {}
    }
    let text = match std::fs::read_to_string(&args.config) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", args.config.display())),
    };
    let mut doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        UsageError(format!(
            "config file {}: {}",
            args.config.display(),
            e.message()
        ))
    })?;
    let key = generate_key();
    let mut entry = Table::new();
    entry.insert("hash", value(hash_key(&key)));
    if let Some(t) = &args.tenant {
        entry.insert("tenant", value(t.as_str()));
    }
    let mut roles = Array::new();
    for r in &args.roles {
        let name = match r {
            RoleArg::Ingest => "ingest",
            RoleArg::Read => "read",
            RoleArg::Admin => "admin",
            RoleArg::Metrics => "metrics",
        };
        if !roles.iter().any(|v| v.as_str() == Some(name)) {
            roles.push(name);
        }
    }
    entry.insert("roles", value(roles));
    if let Some(n) = &args.name {
        entry.insert("name", value(n.as_str()));
    }
    match doc.get_mut("keys") {
        None => {
            let mut tables = ArrayOfTables::new();
            tables.push(entry);
            doc.insert("keys", Item::ArrayOfTables(tables));
        }
        Some(Item::ArrayOfTables(tables)) => tables.push(entry),
        Some(_) => {
            return Err(UsageError(format!(
                "config file {}: `keys` is not an array of tables",
                args.config.display()
            ))
            .into())
        }
    }
    let new_text = doc.to_string();
    // Never write a file the collector would refuse.
    Config::parse(&new_text)
        .map_err(|e| UsageError(format!("config file {}: {e}", args.config.display())))?;
    let dir = args
        .config
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    std::io::Write::write_all(&mut tmp, new_text.as_bytes())?;
    // The new file replaces the old one: keep its mode and owner, so a
    // config the service user reads stays readable by it (a new file is
    // 0600, owned by whoever runs this).
    if let Ok(meta) = std::fs::metadata(&args.config) {
        use std::os::unix::fs::MetadataExt;
        tmp.as_file()
            .set_permissions(meta.permissions())
            .with_context(|| format!("cannot set the mode of {}", args.config.display()))?;
        if let Err(e) = std::os::unix::fs::fchown(tmp.as_file(), Some(meta.uid()), Some(meta.gid()))
        {
            eprintln!(
                "warning: {} now belongs to you, not to uid {} gid {}: {e}",
                args.config.display(),
                meta.uid(),
                meta.gid()
            );
        }
    }
    tmp.persist(&args.config)
        .with_context(|| format!("cannot write {}", args.config.display()))?;
    println!("{key}");
    eprintln!(
        "added {} key{} to {} (shown once; restart the collector to load it)",
        args.roles
            .iter()
            .map(|r| format!("{r:?}").to_lowercase())
            .collect::<Vec<_>>()
            .join("+"),
        args.tenant
            .as_deref()
            .map(|t| format!(" for tenant {t}"))
            .unwrap_or_default(),
        args.config.display()
    );
    Ok(())
}

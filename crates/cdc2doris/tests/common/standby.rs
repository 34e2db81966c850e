//! A hot standby of the stack's PostgreSQL for tests that must meet one.

use std::path::PathBuf;
use std::str::FromStr;

/// A free TCP port on the loopback interface.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A hot standby of the stack's PostgreSQL on a port of its own (pg_basebackup, started with pg_ctl as the
/// `postgres` user), stopped and removed when dropped.
pub struct Standby {
    dir: PathBuf,
    pub port: u16,
}

/// Runs a command as the `postgres` user (the server refuses to run as root).
pub fn as_postgres(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let mut cmd = if root {
        let mut c = std::process::Command::new("runuser");
        c.args(["-u", "postgres", "--", "env"]);
        c
    } else {
        let mut c = std::process::Command::new("sudo");
        c.args(["-n", "-u", "postgres", "env"]);
        c
    };
    for (k, v) in env {
        cmd.arg(format!("{k}={v}"));
    }
    cmd.args(args);
    cmd.output().expect("run a command as postgres")
}

impl Standby {
    /// Copies the primary at `primary_url` (a `postgres://` URL of a role with REPLICATION) and starts the copy as
    /// a hot standby on `port` (a free one when `None`).
    pub async fn start(primary_url: &str, password: &str, port: Option<u16>) -> Standby {
        let url = reqwest::Url::parse(primary_url).expect("primary URL");
        let port = port.unwrap_or_else(free_port);
        let dir = std::env::temp_dir().join(format!(
            "cdc2doris-standby-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir(&dir).expect("standby dir");
        let d = dir.display().to_string();
        for cmd in [
            vec!["chown", "postgres:postgres", d.as_str()],
            vec!["chmod", "700", d.as_str()],
        ] {
            let ok = std::process::Command::new(cmd[0]).args(&cmd[1..]).status();
            assert!(ok.is_ok_and(|s| s.success()), "{cmd:?}");
        }
        let primary_port = url.port().unwrap_or(5432).to_string();
        let out = as_postgres(
            &[
                "pg_basebackup",
                "-h",
                "127.0.0.1",
                "-p",
                &primary_port,
                "-U",
                url.username(),
                "-D",
                &d,
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
            ],
            &[("PGPASSWORD", password)],
        );
        assert!(
            out.status.success(),
            "pg_basebackup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The Debian cluster keeps its configuration outside the data directory: give the copy its own, with the
        // limits a standby must not have below its primary's.
        let (primary, conn) = tokio_postgres::Config::from_str(primary_url)
            .expect("primary URL")
            .password(password)
            .connect(tokio_postgres::NoTls)
            .await
            .expect("connect to the primary");
        tokio::spawn(conn);
        let mut conf = format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{d}'\nhot_standby = on\n\
             ssl = off\nsynchronous_standby_names = ''\n"
        );
        for name in [
            "max_connections",
            "max_worker_processes",
            "max_wal_senders",
            "max_prepared_transactions",
            "max_locks_per_transaction",
            "max_replication_slots",
        ] {
            let value: String = primary
                .query_one(&format!("SHOW {name}"), &[])
                .await
                .expect("show")
                .get(0);
            conf.push_str(&format!("{name} = {value}\n"));
        }
        let hba = "local all all peer\nhost all all 127.0.0.1/32 scram-sha-256\n";
        for (file, text) in [("postgresql.conf", conf.as_str()), ("pg_hba.conf", hba)] {
            let path = dir.join(file);
            std::fs::write(&path, text).expect("standby config");
            let _ = std::process::Command::new("chown")
                .args(["postgres:postgres", &path.display().to_string()])
                .status();
        }
        let log = dir.join("server.log").display().to_string();
        let out = as_postgres(
            &[
                "/usr/lib/postgresql/15/bin/pg_ctl",
                "-D",
                &d,
                "-l",
                &log,
                "-w",
                "-t",
                "60",
                "start",
            ],
            &[],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {} {}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Standby { dir, port }
    }
}

impl Drop for Standby {
    fn drop(&mut self) {
        let d = self.dir.display().to_string();
        let _ = as_postgres(
            &[
                "/usr/lib/postgresql/15/bin/pg_ctl",
                "-D",
                &d,
                "-m",
                "immediate",
                "stop",
            ],
            &[],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

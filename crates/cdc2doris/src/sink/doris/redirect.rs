//! Following the FE's 307 by hand, and deciding who may receive the credentials.
//!
//! Why by hand (spec §1 "Redirect pitfall"): the FE answers a Stream Load with
//! `307 Temporary Redirect` to a BE on another port, with the request's credentials embedded as userinfo in
//! `Location`. reqwest's automatic redirects drop `Authorization` whenever host, *port* or scheme changes
//! (reqwest #516, closed "follow by hand"), so the BE would get no credentials; and they cannot replay a body
//! that is not in memory. So the client uses `Policy::none()`, and this module turns a `Location` into the next
//! URL: userinfo stripped (never logged, never reused — a fresh `Authorization` is built from our own
//! configuration), BE host rewritten if configured, and the hop checked against the credential policy:
//!
//! - configured FEs, configured BEs and `trusted_hosts` always receive credentials;
//! - a redirect issued by a configured FE (or trusted host) may point anywhere: that is the BE it chose;
//! - a redirect issued by any other host (a BE) is only followed to a configured/trusted host;
//! - https → http is refused unless `allow_https_downgrade`.

use std::collections::BTreeMap;

use reqwest::Url;

use crate::sink::RedirectRefusal;

/// `host` (any port) or `host:port`, lowercase host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HostPattern {
    host: String,
    port: Option<u16>,
}

impl HostPattern {
    /// Parses `host`, `host:port`, `[v6]` or `[v6]:port`; None if it is not one of those.
    pub fn parse(s: &str) -> Option<HostPattern> {
        let s = s.trim();
        if s.is_empty() || s.contains('/') || s.contains('@') {
            return None;
        }
        let url = Url::parse(&format!("http://{s}/")).ok()?;
        let host = url.host_str()?.to_ascii_lowercase();
        // Url drops the scheme-default port 80; keep it when written explicitly.
        let port = url.port().or_else(|| s.ends_with(":80").then_some(80));
        Some(HostPattern { host, port })
    }

    fn of_url(url: &Url) -> Option<HostPattern> {
        Some(HostPattern {
            host: url.host_str()?.to_ascii_lowercase(),
            port: url.port_or_known_default(),
        })
    }

    fn matches(&self, url: &Url) -> bool {
        match HostPattern::of_url(url) {
            Some(target) => {
                self.host == target.host && (self.port.is_none() || self.port == target.port)
            }
            None => false,
        }
    }
}

/// Who may receive credentials, and how BE addresses are rewritten.
#[derive(Debug, Clone)]
pub struct RedirectPolicy {
    /// Configured FEs plus `trusted_hosts`: may receive credentials and may redirect them.
    redirectors: Vec<HostPattern>,
    /// Configured BEs: may receive credentials.
    backends: Vec<HostPattern>,
    rewrites: BTreeMap<HostPattern, HostPattern>,
    allow_https_downgrade: bool,
    max_hops: u8,
}

/// The URL to send the next hop to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextHop {
    /// Target, without userinfo, after any host rewrite.
    pub url: Url,
}

impl RedirectPolicy {
    /// Builds the policy; entries that do not parse are skipped (the configuration check reports them).
    pub fn new(
        fe_urls: &[Url],
        be_urls: &[Url],
        trusted_hosts: &[String],
        be_host_rewrite: &BTreeMap<String, String>,
        allow_https_downgrade: bool,
        max_hops: u8,
    ) -> RedirectPolicy {
        let mut redirectors: Vec<HostPattern> =
            fe_urls.iter().filter_map(HostPattern::of_url).collect();
        redirectors.extend(trusted_hosts.iter().filter_map(|h| HostPattern::parse(h)));
        let backends = be_urls.iter().filter_map(HostPattern::of_url).collect();
        let rewrites = be_host_rewrite
            .iter()
            .filter_map(|(from, to)| Some((HostPattern::parse(from)?, HostPattern::parse(to)?)))
            .collect();
        RedirectPolicy {
            redirectors,
            backends,
            rewrites,
            allow_https_downgrade,
            max_hops,
        }
    }

    /// Whether `url` is a configured FE or trusted host (may redirect credentials elsewhere).
    pub fn is_redirector(&self, url: &Url) -> bool {
        self.redirectors.iter().any(|p| p.matches(url))
    }

    fn is_configured(&self, url: &Url) -> bool {
        self.is_redirector(url) || self.backends.iter().any(|p| p.matches(url))
    }

    /// Applies `be_host_rewrite` to `url` (used for redirect targets and error-log URLs).
    pub fn rewrite(&self, url: &mut Url) {
        let Some(target) = HostPattern::of_url(url) else {
            return;
        };
        let hit = self.rewrites.iter().find(|(from, _)| {
            from.host == target.host && (from.port.is_none() || from.port == target.port)
        });
        if let Some((_, to)) = hit {
            // Both calls only fail for URLs that cannot have a host, which http(s) URLs always have.
            let _ = url.set_host(Some(&to.host));
            if let Some(port) = to.port {
                let _ = url.set_port(Some(port));
            }
        }
    }

    /// The next hop for a `Location` answered by `from` after `hops_done` redirects, or why not to follow it.
    pub fn next_hop(
        &self,
        from: &Url,
        location: Option<&str>,
        hops_done: u8,
    ) -> Result<NextHop, (RedirectRefusal, String)> {
        let location = location.ok_or((RedirectRefusal::BadLocation, String::new()))?;
        let mut url = from
            .join(location)
            .map_err(|_| (RedirectRefusal::BadLocation, String::from("<unparsable>")))?;
        // The FE puts `user:password` of the request into Location (spec §1 step 6): drop it at once.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        url.set_fragment(None);
        self.rewrite(&mut url);
        let shown = url.to_string();
        if hops_done >= self.max_hops {
            return Err((RedirectRefusal::TooManyHops, shown));
        }
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err((RedirectRefusal::UnsupportedScheme, shown));
        }
        if from.scheme() == "https" && url.scheme() == "http" && !self.allow_https_downgrade {
            return Err((RedirectRefusal::SchemeDowngrade, shown));
        }
        if !self.is_redirector(from) && !self.is_configured(&url) {
            return Err((RedirectRefusal::UntrustedRedirector, shown));
        }
        Ok(NextHop { url })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn policy() -> RedirectPolicy {
        let mut rewrites = BTreeMap::new();
        rewrites.insert(
            "10.0.0.9".to_string(),
            "be-public.example.com:18040".to_string(),
        );
        RedirectPolicy::new(
            &[url("http://fe1:8030"), url("https://fe2:8443")],
            &[url("http://be1:8040")],
            &["fe-master:8030".to_string()],
            &rewrites,
            false,
            3,
        )
    }

    #[test]
    fn fe_location_loses_its_userinfo_and_keeps_path_and_query() {
        let hop = policy()
            .next_hop(
                &url("http://fe1:8030/api/db/t/_stream_load"),
                Some("http://root:s3cret@10.0.0.2:8040/api/db/t/_stream_load?"),
                0,
            )
            .unwrap();
        assert_eq!(
            hop.url.as_str(),
            "http://10.0.0.2:8040/api/db/t/_stream_load?"
        );
        assert!(!hop.url.as_str().contains("s3cret"));
        // Legacy `user@cluster:password` userinfo too.
        let hop = policy()
            .next_hop(
                &url("http://fe1:8030/x"),
                Some("http://root@default_cluster:pw@be7:8040/api/db/t/_stream_load?a=1"),
                0,
            )
            .unwrap();
        assert_eq!(
            hop.url.as_str(),
            "http://be7:8040/api/db/t/_stream_load?a=1"
        );
    }

    #[test]
    fn relative_locations_resolve_against_the_answering_url() {
        let hop = policy()
            .next_hop(
                &url("http://fe1:8030/api/db/t/_stream_load"),
                Some("/api/db/t/_stream_load?"),
                0,
            )
            .unwrap();
        assert_eq!(hop.url.as_str(), "http://fe1:8030/api/db/t/_stream_load?");
    }

    #[test]
    fn be_host_rewrite_applies_before_the_trust_check() {
        let hop = policy()
            .next_hop(
                &url("http://fe1:8030/x"),
                Some("http://10.0.0.9:8040/api/db/t/_stream_load?"),
                0,
            )
            .unwrap();
        assert_eq!(
            hop.url.as_str(),
            "http://be-public.example.com:18040/api/db/t/_stream_load?"
        );
    }

    #[test]
    fn https_to_http_is_refused_unless_allowed() {
        let from = url("https://fe2:8443/api/db/t/_stream_load");
        let refused = policy()
            .next_hop(&from, Some("http://be1:8040/x"), 0)
            .unwrap_err();
        assert_eq!(refused.0, RedirectRefusal::SchemeDowngrade);
        let mut permissive = policy();
        permissive.allow_https_downgrade = true;
        assert!(permissive
            .next_hop(&from, Some("http://be1:8040/x"), 0)
            .is_ok());
        // https → https is fine.
        assert!(policy()
            .next_hop(&from, Some("https://be9:8041/x"), 0)
            .is_ok());
    }

    #[test]
    fn only_configured_fes_may_redirect_credentials_elsewhere() {
        let p = policy();
        // A BE (configured or reached by redirect) redirecting to a stranger: refused.
        for from in [
            "http://be1:8040/x",
            "http://10.0.0.2:8040/x",
            "http://fe1:9999/x",
        ] {
            let refused = p
                .next_hop(&url(from), Some("http://evil:8040/x"), 1)
                .unwrap_err();
            assert_eq!(refused.0, RedirectRefusal::UntrustedRedirector, "{from}");
        }
        // ...but to a configured FE or BE: allowed.
        assert!(p
            .next_hop(&url("http://10.0.0.2:8040/x"), Some("http://be1:8040/x"), 1)
            .is_ok());
        assert!(p
            .next_hop(&url("http://10.0.0.2:8040/x"), Some("http://fe1:8030/x"), 1)
            .is_ok());
        // A trusted host (FE master) may redirect anywhere.
        assert!(p
            .next_hop(
                &url("http://fe-master:8030/x"),
                Some("http://be5:8040/x"),
                1
            )
            .is_ok());
    }

    #[test]
    fn refusals_never_carry_the_location_credentials() {
        let p = policy();
        for (from, hops) in [
            ("http://be1:8040/x", 0),
            ("https://fe2:8443/x", 0),
            ("http://fe1:8030/x", 3),
        ] {
            let (_, shown) = p
                .next_hop(
                    &url(from),
                    Some("http://root:s3cret@evil:8040/api/db/t/_stream_load?"),
                    hops,
                )
                .unwrap_err();
            assert_eq!(shown, "http://evil:8040/api/db/t/_stream_load?");
        }
    }

    #[test]
    fn hop_limit_and_bad_locations() {
        let p = policy();
        let from = url("http://fe1:8030/x");
        assert_eq!(
            p.next_hop(&from, Some("http://be1:8040/x"), 3)
                .unwrap_err()
                .0,
            RedirectRefusal::TooManyHops
        );
        assert_eq!(
            p.next_hop(&from, None, 0).unwrap_err().0,
            RedirectRefusal::BadLocation
        );
        assert_eq!(
            p.next_hop(&from, Some("http://[::1"), 0).unwrap_err().0,
            RedirectRefusal::BadLocation
        );
        assert_eq!(
            p.next_hop(&from, Some("file:///etc/passwd"), 0)
                .unwrap_err()
                .0,
            RedirectRefusal::UnsupportedScheme
        );
    }

    #[test]
    fn host_patterns() {
        assert_eq!(
            HostPattern::parse("Be1.Example.com:8040"),
            Some(HostPattern {
                host: "be1.example.com".into(),
                port: Some(8040)
            })
        );
        assert_eq!(
            HostPattern::parse("be1"),
            Some(HostPattern {
                host: "be1".into(),
                port: None
            })
        );
        assert_eq!(HostPattern::parse("be1:80").and_then(|p| p.port), Some(80));
        assert!(HostPattern::parse("[::1]:8040").is_some());
        assert!(HostPattern::parse("http://be1").is_none());
        assert!(HostPattern::parse("user@be1").is_none());
        assert!(HostPattern::parse("").is_none());
    }
}

//! The harness's network: each node in a network namespace of its own on a private bridge, so
//! partitions are real packet drops (nftables), or, without root, loopback addresses and
//! Shoal's own transport fault layer.
//!
//! ```text
//!   root namespace: harness ── bridge sj<pid>br 10.201.X.254/24 (no uplink, no forwarding)
//!                                 ├── veth ── netns sj<pid>n1: eth0 10.201.X.1  shoal n1
//!                                 ├── veth ── netns sj<pid>n2: eth0 10.201.X.2  shoal n2
//!                                 └── veth ── netns sj<pid>n3: eth0 10.201.X.3  shoal n3
//! ```
//!
//! A cut between nodes a and b is an nftables rule in each one's namespace dropping packets
//! from the other (`ip saddr <peer> drop`, Jepsen's style: drop, never reject, so peers see
//! timeouts as in a real partition). The harness at .254 always reaches every node. Healing
//! flushes the rules. Everything created here (namespaces, veth pairs, the bridge) is removed
//! when the [`Namespaces`] value is dropped; X is derived from the process id, so two runs on
//! one machine do not collide.
//!
//! Hazard: a harness killed with SIGKILL cannot clean up; `ip netns list | grep ^sj` shows
//! what it left, and `ip netns del` / `ip link del` remove it.

use std::process::Command;

/// Runs a command, failing with its stderr.
fn sh(program: &str, args: &[&str]) -> Result<(), String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program} {}: {e}", args.join(" ")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Whether namespaces can be used here: root, with `ip` and `nft` installed.
pub fn namespaces_available() -> Result<(), String> {
    let uid = Command::new("id").arg("-u").output().map_err(|e| format!("id -u: {e}"))?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Err("not root".into());
    }
    sh("ip", &["-V"]).map_err(|_| "`ip` (iproute2) is not installed".to_string())?;
    sh("nft", &["--version"]).map_err(|_| "`nft` (nftables) is not installed".to_string())?;
    Ok(())
}

/// The namespaces, bridge and links of one run.
pub struct Namespaces {
    tag: String,
    subnet: u32,
    nodes: usize,
    created_namespaces: usize,
    bridge_created: bool,
}

impl Namespaces {
    /// Creates a namespace per node on a new bridge; on failure removes what it made.
    pub fn create(nodes: usize) -> Result<Namespaces, String> {
        let pid = std::process::id();
        let mut net = Namespaces {
            tag: format!("sj{pid}"),
            subnet: pid % 250,
            nodes,
            created_namespaces: 0,
            bridge_created: false,
        };
        net.build()?; // on error, dropping `net` removes what was built
        Ok(net)
    }

    fn bridge(&self) -> String {
        format!("{}br", self.tag)
    }

    /// The namespace of node `i` (0-based).
    pub fn namespace(&self, i: usize) -> String {
        format!("{}n{}", self.tag, i + 1)
    }

    /// The address of node `i` (0-based).
    pub fn address(&self, i: usize) -> String {
        format!("10.201.{}.{}", self.subnet, i + 1)
    }

    fn build(&mut self) -> Result<(), String> {
        let bridge = self.bridge();
        sh("ip", &["link", "add", &bridge, "type", "bridge"])?;
        self.bridge_created = true;
        sh("ip", &["link", "set", &bridge, "up"])?;
        let harness = format!("10.201.{}.254/24", self.subnet);
        sh("ip", &["addr", "add", &harness, "dev", &bridge])?;
        for i in 0..self.nodes {
            let ns = self.namespace(i);
            sh("ip", &["netns", "add", &ns])?;
            self.created_namespaces = i + 1;
            let veth = format!("{}v{}", self.tag, i + 1);
            sh(
                "ip",
                &["link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns],
            )?;
            sh("ip", &["link", "set", &veth, "master", &bridge, "up"])?;
            let addr = format!("{}/24", self.address(i));
            sh("ip", &["-n", &ns, "addr", "add", &addr, "dev", "eth0"])?;
            sh("ip", &["-n", &ns, "link", "set", "eth0", "up"])?;
            sh("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
            sh("ip", &["netns", "exec", &ns, "nft", "add", "table", "inet", "jepsen"])?;
            sh(
                "ip",
                &[
                    "netns",
                    "exec",
                    &ns,
                    "nft",
                    "add",
                    "chain",
                    "inet",
                    "jepsen",
                    "input",
                    "{ type filter hook input priority 0; }",
                ],
            )?;
        }
        Ok(())
    }

    /// Cuts every pair in `pairs` in both directions (on top of existing cuts).
    pub fn cut(&self, pairs: &[(usize, usize)]) -> Result<(), String> {
        for &(a, b) in pairs {
            for (at, from) in [(a, b), (b, a)] {
                let ns = self.namespace(at);
                let peer = self.address(from);
                sh(
                    "ip",
                    &[
                        "netns", "exec", &ns, "nft", "add", "rule", "inet", "jepsen", "input",
                        "ip", "saddr", &peer, "drop",
                    ],
                )?;
            }
        }
        Ok(())
    }

    /// Removes every cut.
    pub fn heal(&self) -> Result<(), String> {
        for i in 0..self.nodes {
            let ns = self.namespace(i);
            sh("ip", &["netns", "exec", &ns, "nft", "flush", "chain", "inet", "jepsen", "input"])?;
        }
        Ok(())
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        // The host end of each veth pair goes first, which removes both ends at once. Left to
        // the namespace's deletion, the pair would go only when the kernel gets round to
        // tearing the namespace down, after `ip netns del` returns, and the next run's
        // `ip link add` of the same name could fail with "File exists" (seen in CI).
        for i in 0..self.created_namespaces {
            let _ = sh("ip", &["link", "del", &format!("{}v{}", self.tag, i + 1)]);
            let _ = sh("ip", &["netns", "del", &self.namespace(i)]);
        }
        if self.bridge_created {
            let _ = sh("ip", &["link", "del", &self.bridge()]);
        }
    }
}

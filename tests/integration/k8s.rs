//! The Kubernetes manifests in `configs/k8s/`: valid against the Kubernetes API schemas
//! (checked offline with the PyPI package `kubernetes-validate`, strict: unknown fields are
//! errors), wired together (the Job mounts the ConfigMap, reads the Secret, names the metrics
//! port the PodMonitor scrapes), and the ConfigMap's job file is one howdah accepts. No cluster
//! is needed. scripts/test.sh installs kubernetes-validate into /opt/howdah-test/.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{describe, Howdah, TestDb};

/// Where scripts/test.sh installs kubernetes-validate (`pip3 install --target`).
const VALIDATOR: &str = "/opt/howdah-test/kubernetes-validate";

fn k8s_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/k8s")
}

/// Runs python3 with the validator's packages on its path.
fn python(args: &[&str]) -> std::process::Output {
    assert!(
        Path::new(VALIDATOR).join("kubernetes_validate").is_dir(),
        "kubernetes-validate is missing: pip3 install --target {VALIDATOR} kubernetes-validate \
         (scripts/test.sh installs it)"
    );
    Command::new("python3")
        .args(args)
        .env("PYTHONPATH", VALIDATOR)
        .output()
        .expect("run python3")
}

const MANIFESTS: [&str; 4] = [
    "secret.yaml",
    "configmap.yaml",
    "job.yaml",
    "podmonitor.yaml",
];

#[test]
fn manifests_are_valid_kubernetes_objects() {
    let files: Vec<String> = MANIFESTS
        .iter()
        .map(|f| k8s_dir().join(f).to_string_lossy().into_owned())
        .collect();
    let mut args = vec!["-m", "kubernetes_validate", "--strict"];
    args.extend(files.iter().map(String::as_str));
    let out = python(&args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "kubernetes-validate failed:\n{text}");
    for (file, kind) in [
        ("secret.yaml", "secret/howdah-urls"),
        ("configmap.yaml", "configmap/howdah-job"),
        ("job.yaml", "job/howdah-copy"),
    ] {
        assert!(
            text.contains(&format!("{file} passed for resource {kind}")),
            "{file} was not validated:\n{text}"
        );
    }
    // The PodMonitor is a Prometheus Operator resource: no schema ships with Kubernetes, so
    // the validator can only say so; its wiring is checked below.
    assert!(
        text.contains("Couldn't find schema for kind PodMonitor"),
        "{text}"
    );
    assert!(!text.contains("ERROR"), "{text}");
}

/// The objects refer to each other by the names and labels they carry.
const WIRING: &str = r#"
import sys, yaml
d = sys.argv[1]
load = lambda f: yaml.safe_load(open(d + "/" + f))
secret, cm, job, pm = (load(f) for f in ["secret.yaml", "configmap.yaml", "job.yaml", "podmonitor.yaml"])
pod = job["spec"]["template"]
c = pod["spec"]["containers"][0]
assert job["spec"]["parallelism"] >= 2, "several workers"
assert "completions" not in job["spec"], "work queue: done when one pod succeeded"
assert pod["spec"]["restartPolicy"] == "Never"
assert c["args"][:3] == ["copy", "--config", "/etc/howdah/job.toml"], c["args"]
assert c["envFrom"][0]["secretRef"]["name"] == secret["metadata"]["name"]
assert sorted(secret["stringData"]) == ["HOWDAH_SOURCE", "HOWDAH_TARGET"]
vol = [v for v in pod["spec"]["volumes"] if v["name"] == c["volumeMounts"][0]["name"]][0]
assert vol["configMap"]["name"] == cm["metadata"]["name"]
assert c["volumeMounts"][0]["mountPath"] == "/etc/howdah"
port = [p for p in c["ports"] if p["name"] == "metrics"][0]
assert pm["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
for k, v in pm["spec"]["selector"]["matchLabels"].items():
    assert pod["metadata"]["labels"].get(k) == v, (k, v)
assert pm["apiVersion"] == "monitoring.coreos.com/v1" and pm["kind"] == "PodMonitor"
assert ":%d\"" % port["containerPort"] in cm["data"]["job.toml"], "the job file serves metrics on the port"
req, lim = c["resources"]["requests"], c["resources"]["limits"]
assert req["memory"] == "64Mi" and lim["memory"] == "256Mi", (req, lim)
sys.stdout.write(cm["data"]["job.toml"])
"#;

#[test]
fn manifests_are_wired_together_and_the_job_file_is_accepted() {
    let dir = k8s_dir().to_string_lossy().into_owned();
    let out = python(&["-c", WIRING, &dir]);
    assert!(
        out.status.success(),
        "configs/k8s/ objects do not fit together:\n{}",
        describe(&out)
    );
    // The job file as the pods read it: howdah accepts it (a dry run reads both catalogs and
    // writes nothing), with the URLs from the environment as the Secret provides them.
    let job = std::env::temp_dir().join(format!("howdah-k8s-job-{}.toml", std::process::id()));
    std::fs::write(&job, &out.stdout).unwrap();
    let src = TestDb::new("k8s_src");
    src.exec("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);");
    let dst = TestDb::new("k8s_dst");
    let run = Howdah::new("copy")
        .args(["--config", &job.to_string_lossy(), "--dry-run"])
        .env("HOWDAH_SOURCE", &src.url())
        .env("HOWDAH_TARGET", &dst.url())
        .run();
    let _ = std::fs::remove_file(&job);
    assert!(run.status.success(), "{}", describe(&run));
}

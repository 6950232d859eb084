//! The Train view's memory line: the estimate for the chosen base model beside the chosen
//! device's free memory (a pinned machine sample, so the figures are fixed), and the refusal,
//! naming what to lower, when the run cannot fit: on the CPU's RAM and on a GPU's free memory.

use crate::common;

use std::time::Duration;

use common::gui::{app, harness_with, step_until};
use egui_kittest::kittest::{NodeT, Queryable};
use s1_studio::model::device::DeviceChoice;
use s1_studio::ui::settings::View;
use s1_studio::ui::system_monitor::{GpuSample, SystemSample};
use s1_studio::ui::Settings;

const GB: u64 = 1_000_000_000;

fn machine(ram_free: u64, gpu_free: u64) -> SystemSample {
    SystemSample {
        process_rss: Some(GB),
        system_used: 16 * GB - ram_free,
        system_total: 16 * GB,
        gpus: Ok(vec![GpuSample {
            index: 0,
            name: "Test GPU".into(),
            used: 80 * GB - gpu_free,
            total: 80 * GB,
            utilisation: None,
        }]),
    }
}

fn labels(h: &egui_kittest::Harness<'static, s1_studio::ui::StudioApp>, part: &str) -> Vec<String> {
    h.query_all_by_label_contains(part)
        // A label's text is its node's value.
        .filter_map(|n| n.accesskit_node().value().or_else(|| n.accesskit_node().label()))
        .collect()
}

#[test]
fn the_estimate_beside_free_memory_and_the_refusal() {
    let d = tempfile::tempdir().unwrap();
    let model = d.path().join("model");
    common::tiny_qwen(&model, 1 << 20);
    let mut s = Settings {
        view: View::Train,
        ..Default::default()
    };
    s.train.model = model.clone();
    s.train.block_size = 1024;
    s.train.batch = 1;
    let mut a = app(s);
    a.system.pin(machine(4 * GB, 40 * GB));
    // Tall enough for the whole form (widgets scrolled out of view are not in the tree).
    let mut h = harness_with(egui_kittest::Harness::builder(), a);
    h.set_size(egui::vec2(1280.0, 2000.0));
    step_until(
        &mut h,
        Duration::from_secs(60),
        |_| {},
        |a| a.train.model_config.is_some(),
    );
    h.run();
    let line = labels(&h, "Memory ≈");
    assert_eq!(line.len(), 1, "{line:?}");
    assert!(line[0].ends_with("4.0 GB RAM available"), "{line:?}");
    assert!(labels(&h, "will not fit").is_empty());

    // A million-token block of 64 rows cannot fit in 4 GB: refused, saying what to lower.
    h.state_mut().settings.train.block_size = 1 << 20;
    h.state_mut().settings.train.batch = 64;
    h.run();
    assert_eq!(labels(&h, "will not fit").len(), 1);
    let refusal = labels(&h, "out of memory: the run needs");
    assert_eq!(refusal.len(), 1, "{refusal:?}");
    assert!(
        refusal[0].contains("337.2 GB") && refusal[0].contains("add --gradient-checkpointing"),
        "{refusal:?}"
    );
    h.state_mut().settings.train.gradient_checkpointing = true;
    h.run();
    let refusal = labels(&h, "out of memory: the run needs");
    assert!(refusal[0].contains("lower --block-size (1048576)"), "{refusal:?}");

    // On a GPU with 40 GB free the small run fits; with 10 MB free it does not.
    h.state_mut().settings.train.block_size = 1024;
    h.state_mut().settings.train.batch = 1;
    h.state_mut().settings.train.device = DeviceChoice::Cuda(0);
    h.run();
    let line = labels(&h, "Memory ≈");
    assert!(line[0].ends_with("40.0 GB free on GPU 0"), "{line:?}");
    h.state_mut().system.pin(machine(4 * GB, GB / 100));
    h.run();
    assert_eq!(labels(&h, "will not fit").len(), 1);

    // A folder without config.json: no estimate, and why.
    h.state_mut().settings.train.model = d.path().join("nothing");
    step_until(
        &mut h,
        Duration::from_secs(60),
        |_| {},
        |a| {
            a.train
                .model_config
                .as_ref()
                .is_some_and(|(p, _)| p.ends_with("nothing"))
        },
    );
    h.run();
    let none = labels(&h, "Memory: no estimate");
    assert!(none[0].contains("config.json"), "{none:?}");
}

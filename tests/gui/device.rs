//! The device picker in the views that load a model, driven through egui_kittest: it shows the
//! devices listed at start ("cpu" on a CPU-only build), and the device chosen in it is the one the
//! view's request carries (the Evaluate form's sweep, the Chat view's model load).

use crate::common;

use std::time::Duration;

use common::gui::{app, harness, step_until};
use egui::accesskit::Role;
use egui_kittest::kittest::{NodeT, Queryable};
use egui_kittest::Harness;
use s1_studio::model::DeviceChoice;
use s1_studio::ui::settings::View;
use s1_studio::ui::{Settings, StudioApp};

/// The text the "Device" combo box shows.
fn shown_device(h: &Harness<'static, StudioApp>) -> String {
    h.get_by_role_and_label(Role::ComboBox, "Device")
        .accesskit_node()
        .value()
        .unwrap_or_default()
}

fn choose_cpu(h: &mut Harness<'static, StudioApp>) {
    h.get_by_role_and_label(Role::ComboBox, "Device").click();
    h.run();
    h.get_by_label("cpu").click();
    h.run();
}

#[test]
fn the_evaluate_form_carries_the_chosen_device() {
    let mut s = Settings {
        view: View::Evaluate,
        ..Default::default()
    };
    s.eval.model = "m.gguf".into();
    // Saved on a GPU machine.
    s.eval.device = DeviceChoice::Cuda(0);
    let mut h = harness(app(s));
    step_until(&mut h, Duration::from_secs(30), |_| {}, |a| !a.devices.is_empty());
    h.run();
    assert_eq!(h.state().devices[0].label(), "cpu");
    assert!(shown_device(&h).starts_with("cuda:0"), "{}", shown_device(&h));
    assert_eq!(h.state().settings.eval.request().unwrap().device, DeviceChoice::Cuda(0));
    choose_cpu(&mut h);
    assert_eq!(shown_device(&h), "cpu");
    assert_eq!(h.state().settings.eval.device, DeviceChoice::Cpu);
    assert_eq!(h.state().settings.eval.request().unwrap().device, DeviceChoice::Cpu);
    // And it persists with the form.
    let back: Settings = serde_json::from_str(&serde_json::to_string(&h.state().settings).unwrap()).unwrap();
    assert_eq!(back.eval.device, DeviceChoice::Cpu);
}

/// A CPU-only build: the model loader asked for a GPU says why it cannot, and after choosing
/// "cpu" in the picker the same model loads.
#[cfg(not(feature = "cuda"))]
#[test]
fn the_chat_loader_loads_on_the_chosen_device() {
    use s1_studio::ui::ModelStatus;
    let d = tempfile::tempdir().unwrap();
    common::tiny_qwen(d.path(), 256);
    let mut s = Settings::default();
    s.chat.device = DeviceChoice::Cuda(0);
    let mut h = harness(app(s));
    step_until(&mut h, Duration::from_secs(30), |_| {}, |a| !a.devices.is_empty());
    h.state_mut().chat.path_input = d.path().display().to_string();
    h.run();
    h.get_by_label("Load").click();
    step_until(
        &mut h,
        Duration::from_secs(60),
        |_| {},
        |a| matches!(a.model, ModelStatus::Failed { .. }),
    );
    h.run();
    h.get_by_label_contains("device `cuda:0`: this build has no CUDA support");
    choose_cpu(&mut h);
    assert_eq!(h.state().settings.chat.device, DeviceChoice::Cpu);
    h.get_by_label("Load").click();
    step_until(
        &mut h,
        Duration::from_secs(60),
        |_| {},
        |a| matches!(a.model, ModelStatus::Loaded(_) | ModelStatus::Failed { .. }),
    );
    assert!(
        matches!(h.state().model, ModelStatus::Loaded(_)),
        "{:?}",
        h.state().model
    );
}

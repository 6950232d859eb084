//! The map's GPU side: shaders/pool_map.wgsl drawn through egui_wgpu's paint callback (as in
//! egui's custom3d_wgpu demo). The points go to the GPU once per change (a new snapshot, colour
//! or pick), as one instance buffer kept in egui_wgpu's callback resources; each frame only
//! writes the small view uniform. A large pool's plain points are splatted by a compute shader
//! instead of drawn as quads where the device allows (pool_map_splat.rs). Nothing is read back:
//! hover and box selection are answered on the CPU from the stored layout (curate::map::grid).

use std::sync::Arc;

use eframe::egui;
use eframe::egui_wgpu::{self, wgpu};

/// Bytes per point: position (2 x f32), sRGB colour (4 x u8), flags (u32).
pub const INSTANCE_BYTES: usize = 16;

/// Flags per point, as the shader reads them.
pub const CONTAMINATED: u32 = 1;
pub const SELECTED: u32 = 2;
pub const PICKED: u32 = 4;
/// Rings a point white like a picked one (the shader knows it; the view rings the hovered
/// point with the painter instead, so a hover never re-uploads the points).
pub const HOVERED: u32 = 8;

/// The points as the GPU takes them, with a version that changes with their content: the
/// pool first (the first `pool` instances), then the selected, then the marked ones, each drawn
/// over the ones before.
#[derive(Debug, Default)]
pub struct MapInstances {
    pub version: u64,
    pub count: u32,
    /// How many of the first instances are the pool's plain points (neither selected nor
    /// marked).
    pub pool: u32,
    pub bytes: Vec<u8>,
}

impl MapInstances {
    /// Writes one point's [`INSTANCE_BYTES`] into `out`.
    pub fn write(out: &mut [u8], p: [f32; 2], colour: egui::Color32, flags: u32) {
        out[0..4].copy_from_slice(&p[0].to_le_bytes());
        out[4..8].copy_from_slice(&p[1].to_le_bytes());
        out[8..12].copy_from_slice(&colour.to_array());
        out[12..16].copy_from_slice(&flags.to_le_bytes());
    }
}

/// The view's uniform, as shaders/pool_map.wgsl's `View` (32 bytes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ViewUniform {
    pub scale: [f32; 2],
    pub offset: [f32; 2],
    pub viewport: [f32; 2],
    pub radius: f32,
    pub alpha: f32,
}

impl ViewUniform {
    fn bytes(&self) -> Vec<u8> {
        [
            self.scale[0],
            self.scale[1],
            self.offset[0],
            self.offset[1],
            self.viewport[0],
            self.viewport[1],
            self.radius,
            self.alpha,
        ]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect()
    }
}

/// One frame's draw of the map.
pub struct PoolMapCallback {
    pub instances: Arc<MapInstances>,
    pub view: ViewUniform,
    /// The widget's rect (egui points): where the callback's viewport is in the framebuffer.
    pub rect: egui::Rect,
    /// Splat the pool's plain points with the compute shader where the device can.
    pub splat: bool,
    /// The render target's format (eframe's surface; kittest's headless target).
    pub format: wgpu::TextureFormat,
}

/// What stays on the GPU between frames (in the callback resources).
struct PoolMapGpu {
    format: wgpu::TextureFormat,
    pipeline: wgpu::RenderPipeline,
    uniform: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
    instances: Option<wgpu::Buffer>,
    /// Bumped when `instances` is a new buffer (the splat's bind group follows it).
    instances_gen: u64,
    /// The version uploaded, its point count and how many of them are the pool's plain points.
    uploaded: Option<(u64, u32, u32)>,
    /// The compute path, made on first use.
    splat: Option<super::pool_map_splat::SplatGpu>,
    /// This frame splatted the pool's plain points (the paint draws only the rest as quads).
    splatted: bool,
}

/// Frames whose pool was splatted by the compute path, since the start (what tests and the
/// frame-time bench read to know which path drew).
static SPLATTED_FRAMES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many frames the compute path has drawn the pool in (this process).
pub fn splatted_frames() -> u64 {
    SPLATTED_FRAMES.load(std::sync::atomic::Ordering::Relaxed)
}

/// Whether the device runs compute shaders reading storage buffers at all (the instance buffer
/// is then made usable as one too).
fn computes(device: &wgpu::Device) -> bool {
    let l = device.limits();
    l.max_compute_workgroups_per_dimension > 0 && l.max_storage_buffers_per_shader_stage >= 2
}

impl PoolMapGpu {
    fn new(device: &wgpu::Device, format: wgpu::TextureFormat) -> Self {
        let shader = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("pool map"),
            source: wgpu::ShaderSource::Wgsl(include_str!("../../shaders/pool_map.wgsl").into()),
        });
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("pool map view"),
            entries: &[wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::VERTEX | wgpu::ShaderStages::FRAGMENT,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: false,
                    min_binding_size: std::num::NonZeroU64::new(32),
                },
                count: None,
            }],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("pool map"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = overlay_pipeline(
            device,
            "pool map",
            Some(&pipeline_layout),
            &shader,
            ("vs_main", "fs_main"),
            &[Some(wgpu::VertexBufferLayout {
                array_stride: INSTANCE_BYTES as u64,
                step_mode: wgpu::VertexStepMode::Instance,
                attributes: &wgpu::vertex_attr_array![0 => Float32x2, 1 => Unorm8x4, 2 => Uint32],
            })],
            format,
        );
        let uniform = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("pool map view"),
            size: 32,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("pool map view"),
            layout: &layout,
            entries: &[wgpu::BindGroupEntry {
                binding: 0,
                resource: uniform.as_entire_binding(),
            }],
        });
        Self {
            format,
            pipeline,
            uniform,
            bind_group,
            instances: None,
            instances_gen: 0,
            uploaded: None,
            splat: None,
            splatted: false,
        }
    }
}

/// A render pipeline over egui's target as its own meshes are drawn: premultiplied alpha, no
/// depth, one sample (the quads' pipeline and the splat's resolve). `layout` None: as the
/// entry points use their bindings.
pub(super) fn overlay_pipeline(
    device: &wgpu::Device,
    label: &str,
    layout: Option<&wgpu::PipelineLayout>,
    shader: &wgpu::ShaderModule,
    (vs, fs): (&str, &str),
    buffers: &[Option<wgpu::VertexBufferLayout>],
    format: wgpu::TextureFormat,
) -> wgpu::RenderPipeline {
    device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
        label: Some(label),
        layout,
        vertex: wgpu::VertexState {
            module: shader,
            entry_point: Some(vs),
            compilation_options: Default::default(),
            buffers,
        },
        fragment: Some(wgpu::FragmentState {
            module: shader,
            entry_point: Some(fs),
            compilation_options: Default::default(),
            targets: &[Some(wgpu::ColorTargetState {
                format,
                blend: Some(wgpu::BlendState::PREMULTIPLIED_ALPHA_BLENDING),
                write_mask: wgpu::ColorWrites::ALL,
            })],
        }),
        primitive: wgpu::PrimitiveState::default(),
        depth_stencil: None,
        multisample: wgpu::MultisampleState::default(),
        multiview_mask: None,
        cache: None,
    })
}

impl egui_wgpu::CallbackTrait for PoolMapCallback {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        screen: &egui_wgpu::ScreenDescriptor,
        encoder: &mut wgpu::CommandEncoder,
        resources: &mut egui_wgpu::CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        if resources.get::<PoolMapGpu>().is_none_or(|g| g.format != self.format) {
            resources.insert(PoolMapGpu::new(device, self.format));
        }
        let Some(gpu) = resources.get_mut::<PoolMapGpu>() else {
            return Vec::new();
        };
        let inst = &self.instances;
        if gpu.uploaded.map(|u| u.0) != Some(inst.version) {
            let fits = gpu
                .instances
                .as_ref()
                .is_some_and(|b| b.size() >= inst.bytes.len() as u64);
            if !fits && !inst.bytes.is_empty() {
                let mut usage = wgpu::BufferUsages::VERTEX | wgpu::BufferUsages::COPY_DST;
                if computes(device) {
                    usage |= wgpu::BufferUsages::STORAGE;
                }
                gpu.instances = Some(device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("pool map points"),
                    size: (inst.bytes.len() as u64).next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT),
                    usage,
                    mapped_at_creation: false,
                }));
                gpu.instances_gen += 1;
            }
            if let Some(b) = &gpu.instances {
                if !inst.bytes.is_empty() {
                    queue.write_buffer(b, 0, &inst.bytes);
                }
            }
            gpu.uploaded = Some((inst.version, inst.count, inst.pool.min(inst.count)));
        }
        queue.write_buffer(&gpu.uniform, 0, &self.view.bytes());
        // The pool's plain points by the compute path, where asked for and possible.
        gpu.splatted = false;
        let vp =
            egui::epaint::ViewportInPixels::from_points(&self.rect, screen.pixels_per_point, screen.size_in_pixels);
        let (w, h) = (vp.width_px.max(0) as u32, vp.height_px.max(0) as u32);
        if let (true, Some(buf), Some((_, _, pool))) = (self.splat, &gpu.instances, gpu.uploaded) {
            let storage = buf.usage().contains(wgpu::BufferUsages::STORAGE);
            if storage && pool > 0 && w > 0 && h > 0 && super::pool_map_splat::supported(device, buf.size(), w, h) {
                let splat = gpu
                    .splat
                    .get_or_insert_with(|| super::pool_map_splat::SplatGpu::new(device, self.format));
                let v = &self.view;
                splat.prepare(
                    device,
                    queue,
                    encoder,
                    buf,
                    gpu.instances_gen,
                    super::pool_map_splat::SplatUniform {
                        scale: v.scale,
                        offset: v.offset,
                        viewport: [w as f32, h as f32],
                        radius: v.radius,
                        alpha: v.alpha,
                        origin: [vp.left_px as f32, vp.top_px as f32],
                        count: pool,
                        width: w,
                        height: h,
                        row: 0,
                    },
                );
                gpu.splatted = true;
                SPLATTED_FRAMES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        Vec::new()
    }

    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        pass: &mut wgpu::RenderPass<'static>,
        resources: &egui_wgpu::CallbackResources,
    ) {
        let Some(gpu) = resources.get::<PoolMapGpu>() else {
            return;
        };
        let (Some(buf), Some((_, count, pool))) = (&gpu.instances, gpu.uploaded) else {
            return;
        };
        let mut first = 0;
        if gpu.splatted {
            if let Some(splat) = &gpu.splat {
                splat.paint(pass);
                first = pool;
            }
        }
        if count <= first {
            return;
        }
        pass.set_pipeline(&gpu.pipeline);
        pass.set_bind_group(0, &gpu.bind_group, &[]);
        pass.set_vertex_buffer(0, buf.slice(..count as u64 * INSTANCE_BYTES as u64));
        pass.draw(0..6, first..count);
    }
}

/// Adds the map's draw to `ui`'s painter over `rect`.
pub fn paint_map(ui: &egui::Ui, rect: egui::Rect, callback: PoolMapCallback) {
    ui.painter()
        .add(egui_wgpu::Callback::new_paint_callback(rect, callback));
}

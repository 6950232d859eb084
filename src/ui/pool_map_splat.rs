//! The map's compute path for a large pool (shaders/pool_map_splat.wgsl): the pool's plain
//! points are splatted into per-pixel sums by a compute shader and resolved by one
//! full-viewport draw; the selected and marked points are then drawn over them as quads
//! (pool_map_gpu.rs). Used where the device runs compute shaders with storage buffers and the
//! sums fit one binding; elsewhere everything is drawn as quads.

use eframe::egui_wgpu::wgpu;

/// The splat's uniform, as shaders/pool_map_splat.wgsl's `Splat` (64 bytes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SplatUniform {
    pub scale: [f32; 2],
    pub offset: [f32; 2],
    pub viewport: [f32; 2],
    pub radius: f32,
    pub alpha: f32,
    pub origin: [f32; 2],
    pub count: u32,
    pub width: u32,
    pub height: u32,
    pub row: u32,
}

impl SplatUniform {
    fn bytes(&self) -> Vec<u8> {
        let f = [
            self.scale[0],
            self.scale[1],
            self.offset[0],
            self.offset[1],
            self.viewport[0],
            self.viewport[1],
            self.radius,
            self.alpha,
            self.origin[0],
            self.origin[1],
        ];
        let u = [self.count, self.width, self.height, self.row, 0, 0];
        f.iter()
            .flat_map(|x| x.to_le_bytes())
            .chain(u.iter().flat_map(|x| x.to_le_bytes()))
            .collect()
    }
}

/// Bytes of sums per pixel (alpha-weighted r, g, b, alpha, optical depth).
const PER_PIXEL: u64 = 5 * 4;
/// Invocations per workgroup (the shader's `@workgroup_size`).
const GROUP: u32 = 256;

/// Whether `device` can splat `instance_bytes` of points into a `width` x `height` viewport:
/// compute shaders with three storage buffers, and each buffer within one binding's limit.
pub fn supported(device: &wgpu::Device, instance_bytes: u64, width: u32, height: u32) -> bool {
    let l = device.limits();
    let sums = width as u64 * height as u64 * PER_PIXEL;
    l.max_compute_workgroups_per_dimension > 0
        && l.max_compute_invocations_per_workgroup >= GROUP
        && l.max_storage_buffers_per_shader_stage >= 2
        && instance_bytes <= l.max_storage_buffer_binding_size
        && sums <= l.max_storage_buffer_binding_size
        && sums <= l.max_buffer_size
}

/// The compute path's GPU objects, kept between frames.
pub struct SplatGpu {
    compute: wgpu::ComputePipeline,
    resolve: wgpu::RenderPipeline,
    uniform: wgpu::Buffer,
    sums: Option<wgpu::Buffer>,
    /// The bind groups, for (the instance buffer's generation, the sums' size).
    bound: Option<(u64, u64, wgpu::BindGroup, wgpu::BindGroup)>,
}

impl SplatGpu {
    pub fn new(device: &wgpu::Device, format: wgpu::TextureFormat) -> Self {
        let shader = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("pool map splat"),
            source: wgpu::ShaderSource::Wgsl(include_str!("../../shaders/pool_map_splat.wgsl").into()),
        });
        // Layouts as the entry points use their bindings (compute: 0-2; resolve: 0 and 3).
        let compute = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("pool map splat"),
            layout: None,
            module: &shader,
            entry_point: Some("splat"),
            compilation_options: Default::default(),
            cache: None,
        });
        let resolve = super::pool_map_gpu::overlay_pipeline(
            device,
            "pool map resolve",
            None,
            &shader,
            ("vs_resolve", "fs_resolve"),
            &[],
            format,
        );
        let uniform = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("pool map splat view"),
            size: 64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Self {
            compute,
            resolve,
            uniform,
            sums: None,
            bound: None,
        }
    }

    /// Records this frame's splat into `encoder` (before egui's render pass): clears the sums
    /// and adds the first `u.count` points of `points` (generation `points_gen`) to them.
    pub fn prepare(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        points: &wgpu::Buffer,
        points_gen: u64,
        mut u: SplatUniform,
    ) {
        let size = (u.width as u64 * u.height as u64 * PER_PIXEL).max(PER_PIXEL);
        if self.sums.as_ref().is_none_or(|b| b.size() < size) {
            self.sums = Some(device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("pool map sums"),
                size,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }));
            self.bound = None;
        }
        let Some(sums) = &self.sums else { return };
        if self
            .bound
            .as_ref()
            .is_none_or(|b| b.0 != points_gen || b.1 != sums.size())
        {
            let compute = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("pool map splat"),
                layout: &self.compute.get_bind_group_layout(0),
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: self.uniform.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: points.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 2,
                        resource: sums.as_entire_binding(),
                    },
                ],
            });
            let resolve = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("pool map resolve"),
                layout: &self.resolve.get_bind_group_layout(0),
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: self.uniform.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 3,
                        resource: sums.as_entire_binding(),
                    },
                ],
            });
            self.bound = Some((points_gen, sums.size(), compute, resolve));
        }
        let Some((_, _, compute_group, _)) = &self.bound else {
            return;
        };
        let groups = u.count.div_ceil(GROUP);
        let max = device.limits().max_compute_workgroups_per_dimension.max(1);
        let gx = groups.min(max);
        let gy = if gx == 0 { 0 } else { groups.div_ceil(gx) };
        u.row = gx * GROUP;
        queue.write_buffer(&self.uniform, 0, &u.bytes());
        encoder.clear_buffer(sums, 0, Some(size));
        if groups == 0 {
            return;
        }
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("pool map splat"),
            timestamp_writes: None,
        });
        pass.set_pipeline(&self.compute);
        pass.set_bind_group(0, compute_group, &[]);
        pass.dispatch_workgroups(gx, gy, 1);
    }

    /// Draws the resolved sums into egui's render pass (its viewport is the map's).
    pub fn paint(&self, pass: &mut wgpu::RenderPass<'static>) {
        let Some((_, _, _, resolve_group)) = &self.bound else {
            return;
        };
        pass.set_pipeline(&self.resolve);
        pass.set_bind_group(0, resolve_group, &[]);
        pass.draw(0..3, 0..1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uniform_is_the_shaders_64_bytes_in_its_order() {
        let u = SplatUniform {
            scale: [1.0, 2.0],
            offset: [3.0, 4.0],
            viewport: [5.0, 6.0],
            radius: 7.0,
            alpha: 8.0,
            origin: [9.0, 10.0],
            count: 11,
            width: 12,
            height: 13,
            row: 14,
        };
        let b = u.bytes();
        assert_eq!(b.len(), 64);
        let f = |i: usize| f32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
        let n = |i: usize| u32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
        assert_eq!(
            (0..10).map(f).collect::<Vec<_>>(),
            (1..=10).map(|x| x as f32).collect::<Vec<_>>()
        );
        assert_eq!((10..14).map(n).collect::<Vec<_>>(), [11, 12, 13, 14]);
    }
}

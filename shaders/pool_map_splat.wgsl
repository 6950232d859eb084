// The pool's plain points (neither selected nor marked: the first `count` instances), splatted
// by a compute shader instead of drawn as a million small quads: each invocation adds its
// point's coverage to the pixels under it with atomics, and a full-viewport pass resolves the
// sums into colour. The selected and marked points are drawn over it as quads
// (pool_map.wgsl), as before.
//
// Why: a million tiny instanced quads are bound by the rasteriser and the blending units (on a
// compute GPU such as an H100/H200 only a few of its units run the graphics pipeline), while
// this runs on every shader core and touches each covered pixel once per point.
//
// Coverage is the quad path's exactly (a round point of `radius` pixels with a one-pixel soft
// edge, alpha `colour.a * alpha`). Blending is order-independent (weighted-average
// transparency): a pixel's alpha is 1 - prod(1 - a_i), summed as the optical depth
// -ln(1 - a_i), and its colour is the points' colours averaged by their alphas: exact for one
// point and for points of one colour, and free of the draw order's bias elsewhere.

struct Splat {
    // NDC = map * scale + offset
    scale: vec2<f32>,
    offset: vec2<f32>,
    // The viewport's size in pixels (as the rasteriser maps NDC to it).
    viewport: vec2<f32>,
    // Point radius in pixels, and one point's alpha (the density shading).
    radius: f32,
    alpha: f32,
    // The viewport's top-left corner in framebuffer pixels (the resolve's pixel lookup).
    origin: vec2<f32>,
    // Points to splat.
    count: u32,
    // The sums' grid: the viewport's size in whole pixels.
    width: u32,
    height: u32,
    // Invocations per row of the dispatch (a large pool needs a second dimension).
    row: u32,
    pad: vec2<u32>,
};

struct Point {
    pos: vec2<f32>,
    // sRGB colour, r in the low byte.
    colour: u32,
    flags: u32,
};

// Fixed-point scales of the sums: alpha-weighted colour and alpha (x2048), optical depth (x1024).
const S: f32 = 2048.0;
const SD: f32 = 1024.0;
// A pixel whose alpha sum reached this takes no more (no wrap-around in a degenerate layout
// that stacks hundreds of thousands of points on one pixel).
const FULL: u32 = 0xE0000000u;

@group(0) @binding(0) var<uniform> u: Splat;
@group(0) @binding(1) var<storage, read> points: array<Point>;
// Per pixel: alpha-weighted r, g, b, alpha, optical depth.
@group(0) @binding(2) var<storage, read_write> acc: array<atomic<u32>>;
// The same sums, read by the resolve.
@group(0) @binding(3) var<storage, read> sums: array<u32>;

@compute @workgroup_size(256)
fn splat(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x + id.y * u.row;
    if (i >= u.count) {
        return;
    }
    let p = points[i];
    let ndc = p.pos * u.scale + u.offset;
    let c = vec2<f32>((ndc.x + 1.0) * 0.5 * u.viewport.x, (1.0 - ndc.y) * 0.5 * u.viewport.y);
    let r = u.radius;
    if (!(c.x > -r && c.y > -r && c.x < u.viewport.x + r && c.y < u.viewport.y + r)) {
        return;
    }
    let colour = unpack4x8unorm(p.colour);
    let a0 = colour.a * u.alpha;
    let x0 = max(i32(floor(c.x - r)), 0);
    let x1 = min(i32(floor(c.x + r)), i32(u.width) - 1);
    let y0 = max(i32(floor(c.y - r)), 0);
    let y1 = min(i32(floor(c.y + r)), i32(u.height) - 1);
    for (var y = y0; y <= y1; y++) {
        for (var x = x0; x <= x1; x++) {
            let q = vec2<f32>(f32(x) + 0.5, f32(y) + 0.5);
            let w = clamp(r - distance(q, c), 0.0, 1.0);
            if (w <= 0.0) {
                continue;
            }
            let a = a0 * w;
            let k = (u32(y) * u.width + u32(x)) * 5u;
            if (atomicLoad(&acc[k + 3u]) >= FULL) {
                continue;
            }
            atomicAdd(&acc[k], u32(a * colour.r * S + 0.5));
            atomicAdd(&acc[k + 1u], u32(a * colour.g * S + 0.5));
            atomicAdd(&acc[k + 2u], u32(a * colour.b * S + 0.5));
            atomicAdd(&acc[k + 3u], u32(a * S + 0.5));
            atomicAdd(&acc[k + 4u], u32(-log(1.0 - min(a, 0.999)) * SD + 0.5));
        }
    }
}

// One triangle over the whole viewport.
@vertex
fn vs_resolve(@builtin(vertex_index) v: u32) -> @builtin(position) vec4<f32> {
    let xy = vec2<f32>(f32((v << 1u) & 2u), f32(v & 2u));
    return vec4<f32>(xy * 2.0 - 1.0, 0.0, 1.0);
}

@fragment
fn fs_resolve(@builtin(position) pos: vec4<f32>) -> @location(0) vec4<f32> {
    let px = pos.xy - u.origin;
    if (px.x < 0.0 || px.y < 0.0) {
        discard;
    }
    let x = u32(px.x);
    let y = u32(px.y);
    if (x >= u.width || y >= u.height) {
        discard;
    }
    let k = (y * u.width + x) * 5u;
    let weight = f32(sums[k + 3u]);
    if (weight <= 0.0) {
        discard;
    }
    let rgb = vec3<f32>(f32(sums[k]), f32(sums[k + 1u]), f32(sums[k + 2u])) / weight;
    let a = 1.0 - exp(-f32(sums[k + 4u]) / SD);
    // egui blends premultiplied alpha.
    return vec4<f32>(rgb * a, a);
}

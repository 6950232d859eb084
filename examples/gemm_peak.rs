use s1_studio::model::gemm::{matmul, threads, transpose, View};
fn time(f: &mut dyn FnMut()) -> f64 {
    let mut v = vec![];
    for _ in 0..21 {
        let t = std::time::Instant::now();
        f();
        v.push(t.elapsed().as_secs_f64());
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[10] * 1e3
}
fn main() {
    for &(rows, out, inp) in &[(1024usize, 1536usize, 512usize), (1024, 512, 1536), (1024, 512, 512)] {
        let dy = vec![0.5f32; rows * out];
        let x = vec![0.25f32; rows * inp];
        let xt = transpose(&x, rows, inp);
        let mut dw = vec![0f32; out * inp];
        let t_dy = time(&mut || {
            std::hint::black_box(transpose(&dy, rows, out));
        });
        let t_x = time(&mut || {
            std::hint::black_box(transpose(&x, rows, inp));
        });
        let dyt = transpose(&dy, rows, out);
        let g1 = time(&mut || unsafe {
            matmul(
                out,
                inp,
                rows,
                dw.as_mut_ptr(),
                inp,
                View::rows(&dyt, rows),
                View::rows(&x, inp),
                false,
                threads(),
            )
        });
        // dW^T = xT dy written col-major into dw (dW row-major)
        let g2 = time(&mut || unsafe {
            gemm::gemm(
                inp,
                out,
                rows,
                dw.as_mut_ptr(),
                inp as isize,
                1,
                false,
                xt.as_ptr(),
                1,
                rows as isize,
                dy.as_ptr(),
                1,
                out as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                threads(),
            )
        });
        let g3 = time(&mut || unsafe {
            gemm::gemm(
                inp,
                out,
                rows,
                dw.as_mut_ptr(),
                1,
                out as isize,
                false,
                xt.as_ptr(),
                1,
                rows as isize,
                dy.as_ptr(),
                1,
                out as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                threads(),
            )
        });
        println!("rows {rows} out {out} inp {inp}: T(dy) {t_dy:.2} T(x) {t_x:.2} | dyT*x {g1:.2} | xT*dy colmajor-dst {g2:.2} | xT*dy rowmajor(dWT) {g3:.2}");
    }
}

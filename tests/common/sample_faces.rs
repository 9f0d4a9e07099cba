//! Face boxes of four sample photos, found once with `maskforge detect
//! data/samples` (HOG on the full image, the default scale for
//! `--min-face 40`): (file, left, top, right, bottom). Shared by the tests
//! and `bench_train` so crops can be cut without dlib.
pub const SAMPLE_FACES: [(&str, f32, f32, f32, f32); 4] = [
    ("biden.jpg", 439.0, 233.0, 750.0, 543.0),
    ("obama.jpg", 366.0, 136.0, 625.0, 395.0),
    ("obama2.jpg", 164.0, 302.0, 475.0, 612.0),
    ("obama3.jpg", 646.0, 302.0, 956.0, 612.0),
];

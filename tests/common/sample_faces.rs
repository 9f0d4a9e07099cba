//! Face boxes of four sample photos, found once with `maskforge detect
//! data/samples`: (file, left, top, right, bottom). Shared by the tests and
//! `bench_train` so crops can be cut without dlib.
pub const SAMPLE_FACES: [(&str, f32, f32, f32, f32); 4] = [
    ("biden.jpg", 450.6, 254.8, 753.3, 554.4),
    ("obama.jpg", 344.8, 138.6, 613.2, 406.8),
    ("obama2.jpg", 138.7, 288.8, 477.9, 626.3),
    ("obama3.jpg", 660.4, 309.9, 926.8, 576.0),
];

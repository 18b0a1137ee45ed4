//! The real Fashion-MNIST files installed by `scripts/setup` (run `make test`, which
//! runs setup first): official content, shapes and class balance.
use helpers::data::fashion_mnist;
use helpers::Result;

#[test]
fn official_fashion_mnist_loads_with_known_checksums_and_balance() -> Result<()> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/fashion_mnist");
    let data = fashion_mnist::load(dir)
        .inspect_err(|_| eprintln!("run `scripts/setup fashion-mnist` first"))?;
    assert!(fashion_mnist::checksums_match(&data), "{:?}", data.files);
    assert_eq!(data.train.images.size(), vec![60000, 1, 28, 28]);
    assert_eq!(data.test.images.size(), vec![10000, 1, 28, 28]);
    assert_eq!(data.train.class_counts(10), vec![6000; 10]);
    assert_eq!(data.test.class_counts(10), vec![1000; 10]);
    let card = data.card().table()?;
    assert!(card.to_html().contains("MIT"));
    Ok(())
}

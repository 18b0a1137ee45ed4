//! Axis-aligned boxes in pixel coordinates of their image (continuous: a box covering
//! pixels 0..10 is `x0 = 0, x1 = 10`, as Pascal VOC files written by labelling tools and
//! COCO's `[x, y, w, h]` both mean it), and their overlap.
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BoundingBox {
    pub x0: f32,
    pub y0: f32,
    pub x1: f32,
    pub y1: f32,
}

impl BoundingBox {
    pub fn new(x0: f32, y0: f32, x1: f32, y1: f32) -> BoundingBox {
        BoundingBox { x0, y0, x1, y1 }
    }

    /// From COCO's `[x, y, width, height]`.
    pub fn from_xywh(x: f32, y: f32, w: f32, h: f32) -> BoundingBox {
        BoundingBox::new(x, y, x + w, y + h)
    }

    pub fn width(&self) -> f32 {
        (self.x1 - self.x0).max(0.0)
    }

    pub fn height(&self) -> f32 {
        (self.y1 - self.y0).max(0.0)
    }

    pub fn area(&self) -> f32 {
        self.width() * self.height()
    }

    pub fn center(&self) -> (f32, f32) {
        ((self.x0 + self.x1) / 2.0, (self.y0 + self.y1) / 2.0)
    }

    /// The part inside `other` (zero-area when they do not meet).
    pub fn intersection(&self, other: &BoundingBox) -> BoundingBox {
        BoundingBox::new(
            self.x0.max(other.x0),
            self.y0.max(other.y0),
            self.x1.min(other.x1),
            self.y1.min(other.y1),
        )
    }

    /// Intersection over union, as `torchvision.ops.box_iou` and COCO compute it (no +1
    /// on the sides); 0 when both areas are 0.
    pub fn iou(&self, other: &BoundingBox) -> f32 {
        let inter = self.intersection(other).area();
        let union = self.area() + other.area() - inter;
        if union <= 0.0 {
            0.0
        } else {
            inter / union
        }
    }

    /// Moved by `(dx, dy)`.
    pub fn shifted(&self, dx: f32, dy: f32) -> BoundingBox {
        BoundingBox::new(self.x0 + dx, self.y0 + dy, self.x1 + dx, self.y1 + dy)
    }

    /// Multiplied by `s` (an image resized by `s`).
    pub fn scaled(&self, s: f32) -> BoundingBox {
        BoundingBox::new(self.x0 * s, self.y0 * s, self.x1 * s, self.y1 * s)
    }

    /// COCO's `[x, y, width, height]`.
    pub fn xywh(&self) -> [f32; 4] {
        [self.x0, self.y0, self.width(), self.height()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_of_overlapping_disjoint_and_identical_boxes() {
        let a = BoundingBox::new(0.0, 0.0, 10.0, 10.0);
        let b = BoundingBox::new(5.0, 0.0, 15.0, 10.0);
        assert!((a.iou(&b) - 50.0 / 150.0).abs() < 1e-6);
        assert_eq!(a.iou(&BoundingBox::new(20.0, 20.0, 30.0, 30.0)), 0.0);
        assert_eq!(a.iou(&a), 1.0);
        let empty = BoundingBox::new(3.0, 3.0, 3.0, 3.0);
        assert_eq!(empty.iou(&empty), 0.0);
    }
}

import numpy as np
import pytest
import torch

from handmt.metrics import (
    confusion_matrix,
    iou,
    mpjpe,
    pck_at,
    pck_curve,
    top1,
    video_accuracy,
    video_scores,
)

# Offsets with integer Euclidean norms (3-4-5 triangles) and their lengths in mm.
OFFSET_OF_LENGTH = {0: (0, 0, 0), 5: (3, 4, 0), 15: (0, 9, 12), 25: (15, 0, 20), 40: (24, 32, 0),
                    41: (9, 40, 0)}


def pose_case(errors):
    """gt at random positions and pred = gt + offsets of the given lengths (frames, 21)."""
    gt = np.random.default_rng(0).uniform(-100, 500, size=(*np.shape(errors), 3))
    offsets = np.array([[OFFSET_OF_LENGTH[e] for e in frame] for frame in errors], dtype=float)
    return gt + offsets, gt


# Two frames: joints 0-9 exact, joints 10-15 off by 5 then 15 mm, joints 16-20 by 25 then 40 mm.
HAND_ERRORS = [[0] * 10 + [5] * 6 + [25] * 5, [0] * 10 + [15] * 6 + [40] * 5]


def test_pck_curve_hand_case():
    pred, gt = pose_case(HAND_ERRORS)
    thresholds = [0, 10, 20, 30]
    pck, auc = pck_curve(pred, gt, thresholds)
    # Per joint: PCK(0) = 1 for joints 0-9 only; at 10 mm joints 10-15 have one of two frames;
    # at 20 both; at 30 joints 16-20 have one of two.
    expected = np.array([10, 10 + 6 * 0.5, 10 + 6, 10 + 6 + 5 * 0.5]) / 21
    np.testing.assert_allclose(pck, expected)
    # Trapezoids of width 10 mm, divided by the 30 mm range.
    expected_auc = 10 * ((10 + 13) / 2 + (13 + 16) / 2 + (16 + 18.5) / 2) / 21 / 30
    assert auc == pytest.approx(expected_auc)
    assert pck_at(pck, thresholds, 20) == pytest.approx(16 / 21)
    with pytest.raises(ValueError, match="not on the curve's grid"):
        pck_at(pck, thresholds, 25)


def test_pck_curve_averages_each_joint_over_frames():
    # Joint 0 is off by 41 mm in one frame of two, every other joint is exact: below 41 mm the
    # curve averages joint 0 at PCK 1/2 with the 20 others at 1.
    errors = [[41] + [0] * 20, [0] * 21]
    pck, auc = pck_curve(*pose_case(errors))  # default grid: 0, 2.5, ..., 50 mm
    below = np.linspace(0, 50, 21) < 41
    np.testing.assert_allclose(pck, np.where(below, (20 + 0.5) / 21, 1.0))
    # 16 intervals of 2.5 mm up to 40 mm at 20.5/21, one from 40 to 42.5 rising to 1, 3 at 1.
    expected_auc = (2.5 * 16 * 20.5 / 21 + 2.5 * (20.5 / 21 + 1) / 2 + 2.5 * 3) / 50
    assert auc == pytest.approx(expected_auc)


def test_pck_curve_valid_mask_and_leading_dims():
    pred, gt = pose_case(HAND_ERRORS)
    # Batch x time (2, 2): the labelled frames are the hand case, the others are 1 m off.
    far = gt + 1000
    pred_bt = np.stack([np.stack([pred[0], far[0]]), np.stack([far[1], pred[1]])])
    gt_bt = np.stack([np.stack([gt[0], gt[0]]), np.stack([gt[1], gt[1]])])
    valid = torch.tensor([[True, False], [False, True]])
    pck, auc = pck_curve(torch.from_numpy(pred_bt), torch.from_numpy(gt_bt), [0, 10, 20, 30],
                         valid=valid)
    expected_pck, expected_auc = pck_curve(pred, gt, [0, 10, 20, 30])
    np.testing.assert_allclose(pck, expected_pck)
    assert auc == pytest.approx(expected_auc)
    assert mpjpe(pred_bt, gt_bt, valid) == pytest.approx(mpjpe(pred, gt))
    with pytest.raises(ValueError, match="no frame with a pose label"):
        pck_curve(pred_bt, gt_bt, valid=torch.zeros(2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="leading dims"):
        mpjpe(pred_bt, gt_bt, valid=torch.ones(4, dtype=torch.bool))


def test_mpjpe_hand_case():
    pred, gt = pose_case(HAND_ERRORS)
    assert mpjpe(pred, gt) == pytest.approx((6 * (5 + 15) + 5 * (25 + 40)) / 42)


def test_top1_ignores_unlabelled_samples():
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    # The third sample is wrong for either class but unlabelled; of the others 2 of 3 are right.
    assert top1(scores, np.array([0, 0, -1, 1])) == pytest.approx(2 / 3)
    assert top1(torch.tensor(scores), torch.tensor([1, 1, -1, 1])) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="no labelled sample"):
        top1(scores, np.array([-1, -1, -1, -1]))


def test_confusion_matrix_counts():
    pred = [0, 1, 1, 2, 2, 2, 0]
    labels = [0, 1, 2, 2, 2, 0, -1]
    cm = confusion_matrix(pred, labels, num_classes=3)
    expected = np.array([[1, 0, 1],   # true 0: predicted 0 once, 2 once
                         [0, 1, 0],   # true 1: predicted 1
                         [0, 1, 2]])  # true 2: predicted 1 once, 2 twice; label -1 ignored
    np.testing.assert_array_equal(cm, expected)
    assert cm.dtype == np.int64
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        confusion_matrix([3], [0], num_classes=3)


# Two videos (ids 7 and 3) with three interleaved views each, two classes.
# Video 7, label 0: one view sure of class 0 (logits 4, 0), two mildly for class 1 (0, 1).
#   P(class 0) per view: 0.982, 0.269, 0.269 -> mean 0.507: class 0 (right); majority: class 1.
# Video 3, label 1: one view extremely sure of class 0 (20, 0), two for class 1 (0, 3).
#   P(class 0): 1.000, 0.047, 0.047 -> mean 0.365: class 1 (right); mean logits (6.7, 2): class 0.
VIDEO_IDS = np.array([7, 3, 7, 3, 7, 3])
VIEW_LABELS = np.array([0, 1, 0, 1, 0, 1])
VIEW_LOGITS = np.array([[4.0, 0], [20, 0], [0, 1], [0, 3], [0, 1], [0, 3]])


def test_video_accuracy_averages_probabilities_over_views():
    assert video_accuracy(VIEW_LOGITS, VIEW_LABELS, VIDEO_IDS) == 1.0
    # The protocols it must not be: majority vote and averaged logits each get one video wrong.
    videos = [VIDEO_IDS == 7, VIDEO_IDS == 3]
    votes = [np.bincount(VIEW_LOGITS[v].argmax(1), minlength=2).argmax() for v in videos]
    mean_logits = [VIEW_LOGITS[v].mean(0).argmax() for v in videos]
    assert votes == [1, 1] and mean_logits == [0, 0]


def test_video_scores_groups_views_by_video():
    probs = torch.softmax(torch.tensor(VIEW_LOGITS), dim=1)
    videos, mean_probs = video_scores(probs, VIDEO_IDS)
    np.testing.assert_array_equal(videos, [3, 7])
    sigmoid = 1 / (1 + np.exp(-np.array([20.0, -3, -3, 4, -1, -1])))  # P(class 0) per view
    np.testing.assert_allclose(mean_probs[:, 0], [sigmoid[:3].mean(), sigmoid[3:].mean()])
    np.testing.assert_allclose(mean_probs.sum(1), 1.0)


def test_video_accuracy_rejects_views_with_different_labels():
    with pytest.raises(ValueError, match="views of video 3 carry different labels"):
        video_accuracy(VIEW_LOGITS, [0, 1, 0, 0, 0, 1], VIDEO_IDS)


def test_iou_pools_pixels_over_the_batch():
    pred = np.array([[[0.9, 0.2], [0.1, 0.0]],    # image 1: its one pixel right, IoU 1
                     [[0.6, 0.7], [0.4, 0.0]]])   # image 2: 0.4 < 0.5, nothing overlaps, IoU 0
    target = np.array([[[1, 0], [0, 0]],
                       [[0, 0], [1, 0]]])
    # Pooled: intersection 1, union 1 + 3 = 4 (not the mean 0.5 of the per-image IoUs).
    assert iou(pred, target) == pytest.approx(1 / 4)
    assert iou(torch.tensor(pred), torch.tensor(target), threshold=0.35) == pytest.approx(2 / 4)


def test_iou_empty_union_is_perfect():
    assert iou(np.full((2, 4, 4), 0.2), np.zeros((2, 4, 4))) == 1.0


def test_iou_rejects_logits():
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        iou(np.array([-2.0, 3.0]), np.array([0, 1]))

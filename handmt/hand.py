"""The 21-joint hand in FPHA file order.

Everything that knows the hand's structure reads it from here: the kinematic tree (synthetic
generator, skeleton drawing), the palm/finger groups of the multi-scale relation module
(collaborative paper, section 3.3) and the flip map of the augmentations.
"""

import numpy as np

JOINT_NAMES = (
    "Wrist",
    "TMCP", "IMCP", "MMCP", "RMCP", "PMCP",
    "TPIP", "TDIP", "TTIP",
    "IPIP", "IDIP", "ITIP",
    "MPIP", "MDIP", "MTIP",
    "RPIP", "RDIP", "RTIP",
    "PPIP", "PDIP", "PTIP",
)
NUM_JOINTS = len(JOINT_NAMES)
WRIST = 0

FINGERS = ("thumb", "index", "middle", "ring", "pinky")
# MCP of each finger, then its PIP, DIP and TIP: the chain from the palm to the fingertip.
FINGER_CHAINS = tuple((1 + f, 6 + 3 * f, 7 + 3 * f, 8 + 3 * f) for f in range(5))

PARENTS = [-1] * NUM_JOINTS
for _mcp, _pip, _dip, _tip in FINGER_CHAINS:
    PARENTS[_mcp] = WRIST
    PARENTS[_pip], PARENTS[_dip], PARENTS[_tip] = _mcp, _pip, _dip
PARENTS = tuple(PARENTS)

# (parent, child) for every joint but the wrist: 20 bones.
BONES = tuple((p, c) for c, p in enumerate(PARENTS) if p >= 0)

# A canonical adult hand: bone lengths in mm, in `BONES` order (wrist to the five MCPs, thumb
# first, then each finger's three phalanges, thumb to pinky). The synthetic subjects vary around
# it; skeleton normalisation retargets every subject onto it (data/skeleton.py).
BONE_LENGTHS_MM = np.array([
    38.0, 86.0, 84.0, 79.0, 74.0,
    46.0, 33.0, 29.0,
    42.0, 25.0, 22.0,
    46.0, 28.0, 23.0,
    43.0, 27.0, 22.0,
    34.0, 20.0, 20.0,
])

# Level 2 of the multi-scale relation: the palm (wrist and five MCPs) and the five fingers
# (PIP, DIP, TIP), as docs/design.md fixes it. Level 3 is the whole hand.
PALM = (WRIST, *(chain[0] for chain in FINGER_CHAINS))
FINGER_GROUPS = tuple(chain[1:] for chain in FINGER_CHAINS)
PART_GROUPS = (PALM, *FINGER_GROUPS)
PART_NAMES = ("palm", *FINGERS)

# A horizontal flip turns a right hand into a left one; FPHA annotates one hand, so no joint
# changes name. The map is the identity: flips mirror x and keep the joint order.
FLIP_MAP = tuple(range(NUM_JOINTS))

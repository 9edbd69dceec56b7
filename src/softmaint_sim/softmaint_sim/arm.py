"""
Reduced-order soft continuum arm in MuJoCo: a clamped chain of capsules on bending hinges.

The arm hangs from a clamp at the base and bends in the x-z plane. Each of its N segments is a
capsule joined to the previous one by a hinge whose spring stiffness is the discretised bending
stiffness E*I/ds of an elastic rod. Two antagonistic tendons (fixed tendons over all hinges,
moment arm r_t) bend it towards (+x, tendon_0) or away from (-x, tendon_1) a horizontal cylindrical
post that it sweeps against on every motion cycle (the contact point moves along the arm with
the force). Touch sensors on box sites on the post side of the arm form the taxel strip; a
fixed camera looks at the bending plane.

Degradation is applied as physics between episodes (or between live steps) by editing the
compiled model in place: per-hinge stiffness and damping, spring rest angles, tendon moment arms
and the colour/size of crack markers (see degradation.py for what sets them).
"""
from dataclasses import dataclass, replace
import math
from typing import Optional, Tuple

import mujoco
import numpy as np

SEGMENTS = 20
TAXELS = 32
FIELD_TAXELS = 8
BEND_SENSORS = 4
ACTUATORS = ('tendon_0', 'tendon_1')
BEND_NAMES = tuple(f'bend_{i}' for i in range(BEND_SENSORS))
# Colour a microbial film gives the skin (dark green-brown), blended in with its cover.
FOULING_RGBA = np.array([0.22, 0.30, 0.12, 1.0])
FOULING_OPACITY = 0.8          # a fully fouled skin shows this much of the film's colour


@dataclass(frozen=True)
class ArmGeometry:
    """Material, geometry and scene of one arm (the field domain shifts these)."""

    length: float = 0.40            # arm length [m]
    radius: float = 0.015           # capsule radius [m]
    youngs_modulus: float = 1.5e6   # effective bending modulus of the elastomer body [Pa]
    density: float = 1100.0         # [kg/m^3]
    damping_time: float = 0.02      # Kelvin-Voigt retardation time: damping = stiffness * it [s]
    tendon_arm: float = 0.015       # tendon moment arm about the neutral axis [m]
    force_max: float = 25.0         # actuator force limit [N]
    post_x: float = 0.08            # axis of the touched cylindrical post from the arm axis [m]
    post_depth: float = 0.30        # post axis below the clamp [m]
    post_radius: float = 0.05       # [m]
    friction: float = 0.6
    base_height: float = 0.60       # clamp height [m]
    arm_rgba: Tuple[float, ...] = (0.85, 0.45, 0.15, 1.0)
    post_rgba: Tuple[float, ...] = (0.55, 0.60, 0.65, 1.0)
    background_rgba: Tuple[float, ...] = (0.20, 0.22, 0.25, 1.0)
    camera_pos: Tuple[float, float, float] = (0.04, -0.80, 0.40)
    camera_fovy: float = 34.0
    timestep: float = 0.005         # [s]
    armature: float = 2.0e-5        # hinge armature [kg m^2]: keeps the 5 ms step stable

    @property
    def segment_length(self) -> float:
        """Length of one segment [m]."""
        return self.length / SEGMENTS

    @property
    def bending_stiffness(self) -> float:
        """E*I of the rod cross-section [N m^2]."""
        return self.youngs_modulus * math.pi * self.radius ** 4 / 4.0

    @property
    def hinge_stiffness(self) -> float:
        """Nominal hinge spring stiffness E*I/ds [N m/rad]."""
        return self.bending_stiffness / self.segment_length

    @property
    def hinge_damping(self) -> float:
        """Nominal hinge damping [N m s/rad] (Kelvin-Voigt: stiffness times a time constant)."""
        return self.hinge_stiffness * self.damping_time

    @property
    def mass(self) -> float:
        """Arm mass [kg]."""
        return self.density * math.pi * self.radius ** 2 * self.length


SIM_GEOMETRY = ArmGeometry()
# The field robot: a stiffer-but-thicker cast of another elastomer, a bit longer, a different
# colour and scene, mounted with a slightly different camera pose.
FIELD_GEOMETRY = replace(
    SIM_GEOMETRY, length=0.42, radius=0.016, youngs_modulus=1.3e6, density=1180.0,
    damping_time=0.025, tendon_arm=0.016, post_x=0.085, post_depth=0.32, friction=0.8,
    arm_rgba=(0.80, 0.55, 0.25, 1.0), post_rgba=(0.62, 0.60, 0.55, 1.0),
    background_rgba=(0.28, 0.26, 0.24, 1.0), camera_pos=(0.06, -0.84, 0.41), camera_fovy=35.0)


def _fmt(values) -> str:
    return ' '.join(f'{v:.6g}' for v in values)


def build_mjcf(geo: ArmGeometry, width: int = 64, height: int = 64) -> str:
    """MJCF text of the arm, the post and the camera; offscreen buffer `width` x `height`."""
    ds = geo.segment_length
    r = geo.radius
    pitch = geo.length / TAXELS
    bodies = []
    # taxel j sits at arc length (j + 0.5) * pitch, on the body that covers that arc length
    taxels_of = {i: [] for i in range(SEGMENTS)}
    for j in range(TAXELS):
        s = (j + 0.5) * pitch
        taxels_of[min(int(s / ds), SEGMENTS - 1)].append((j, s))
    for i in range(SEGMENTS):
        sites = ''
        for j, s in taxels_of[i]:
            lo, hi = j * pitch - i * ds, (j + 1) * pitch - i * ds   # taxel span on this body
            if j == TAXELS - 1:
                hi += r        # the last taxel also covers the tip's end cap
            sites += (f'<site name="taxel_{j}" type="box" pos="{r * 0.6:.6g} 0 '
                      f'{-(lo + hi) / 2:.6g}" size="{r * 0.7:.6g} {r * 1.1:.6g} '
                      f'{(hi - lo) / 2:.6g}" rgba="0 0 0 0"/>')
        tip = (f'<site name="tip" pos="0 0 {-ds:.6g}" size="0.002"/>'
               if i == SEGMENTS - 1 else '')
        pos = '0 0 0' if i == 0 else f'0 0 {-ds:.6g}'
        bodies.append(
            f'<body name="seg_{i}" pos="{pos}">'
            f'<joint name="hinge_{i}" type="hinge" axis="0 1 0"/>'
            f'<geom name="capsule_{i}" type="capsule" fromto="0 0 0 0 0 {-ds:.6g}" '
            f'size="{r:.6g}" material="skin"/>'
            f'<geom name="crack_{i}" type="box" pos="0 {-r * 0.97:.6g} {-ds / 2:.6g}" '
            f'size="{r * 0.8:.6g} {r * 0.05:.6g} {ds * 0.45:.6g}" rgba="0.05 0.02 0.02 0" '
            f'contype="0" conaffinity="0" mass="0"/>'
            f'{sites}{tip}')
    chain = ''.join(bodies) + '</body>' * SEGMENTS
    tendons = ''.join(
        f'<fixed name="{name}">'
        + ''.join(f'<joint joint="hinge_{i}" coef="{sign * geo.tendon_arm:.6g}"/>'
                  for i in range(SEGMENTS))
        + '</fixed>'
        for name, sign in (('tendon_0', -1.0), ('tendon_1', 1.0)))
    actuators = ''.join(
        f'<motor name="{name}" tendon="{name}" gear="1" ctrllimited="true" '
        f'ctrlrange="0 {geo.force_max:.6g}"/>' for name in ACTUATORS)
    touch = ''.join(f'<touch name="touch_{j}" site="taxel_{j}"/>' for j in range(TAXELS))
    z0 = geo.base_height
    return f"""
<mujoco model="softmaint_arm">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{geo.timestep:.6g}" integrator="implicitfast" gravity="0 0 -9.81"/>
  <visual>
    <global offwidth="{width}" offheight="{height}"/>
    <quality shadowsize="0" offsamples="0" numslices="12" numstacks="6"/>
    <headlight ambient="0.25 0.25 0.25" diffuse="0.1 0.1 0.1" specular="0 0 0"/>
  </visual>
  <default>
    <joint stiffness="{geo.hinge_stiffness:.6g}" damping="{geo.hinge_damping:.6g}"
           armature="{geo.armature:.6g}"/>
    <geom contype="1" conaffinity="0" density="{geo.density:.6g}"
          friction="{geo.friction} 0.005 0.0001" solref="0.01 1" solimp="0.9 0.95 0.001"/>
  </default>
  <asset>
    <material name="skin" rgba="{_fmt(geo.arm_rgba)}" specular="0.2" shininess="0.3"/>
  </asset>
  <worldbody>
    <light name="key" pos="0.3 -0.8 1.2" dir="-0.25 0.65 -0.7" diffuse="0.8 0.8 0.8"
           specular="0.1 0.1 0.1" directional="false" castshadow="false"/>
    <geom name="backdrop" type="box" pos="0 0.25 0.35" size="0.8 0.01 0.6"
          rgba="{_fmt(geo.background_rgba)}" contype="0" conaffinity="0"/>
    <geom name="post" type="cylinder" pos="{geo.post_x:.6g} 0 {z0 - geo.post_depth:.6g}"
          size="{geo.post_radius:.6g} 0.08" euler="1.5707963 0 0" rgba="{_fmt(geo.post_rgba)}"
          contype="0" conaffinity="1"/>
    <geom name="clamp" type="box" pos="0 0 {z0 + 0.02:.6g}" size="0.04 0.04 0.02"
          rgba="0.3 0.3 0.35 1" contype="0" conaffinity="0"/>
    <camera name="side" pos="{_fmt(geo.camera_pos)}" xyaxes="1 0 0 0 0 1"
            fovy="{geo.camera_fovy}"/>
    <body name="base" pos="0 0 {z0:.6g}">
    {chain}
    </body>
  </worldbody>
  <tendon>{tendons}</tendon>
  <actuator>{actuators}</actuator>
  <sensor>{touch}</sensor>
</mujoco>
"""


@dataclass
class Physics:
    """Per-episode physical parameters applied to the compiled model (degradation as physics)."""

    stiffness: np.ndarray           # per-hinge stiffness fraction of nominal [SEGMENTS]
    damping: np.ndarray             # per-hinge damping factor (x nominal) [SEGMENTS]
    rest_angle: np.ndarray          # per-hinge spring rest angle [rad] (delamination bulge)
    arms: np.ndarray                # tendon moment-arm factor per tendon and hinge [2, SEGMENTS]
    crack: np.ndarray               # visible crack size per segment [0, 1]
    fouling: float = 0.0            # microbial film cover of the skin [0, 1] (its colour)

    @classmethod
    def healthy(cls) -> 'Physics':
        """Return the parameters of a new arm."""
        ones = np.ones(SEGMENTS)
        return cls(ones.copy(), ones.copy(), np.zeros(SEGMENTS), np.ones((2, SEGMENTS)),
                   np.zeros(SEGMENTS))


@dataclass
class Look:
    """Rendering conditions of an episode: lighting and camera pose."""

    light: float = 1.0                               # diffuse intensity factor
    tint: Tuple[float, float, float] = (1.0, 1.0, 1.0)  # colour of the light
    light_offset: Tuple[float, float, float] = (0.0, 0.0, 0.0)  # [m]
    camera_offset: Tuple[float, float, float] = (0.0, 0.0, 0.0)  # [m]
    ambient: Optional[float] = None  # ambient light (None: the model's 0.25; space: ~0)


class Arm:
    """
    A compiled arm model with its data and an offscreen renderer.

    Create one per process (MuJoCo renderers hold a GL context). Not thread-safe.
    """

    def __init__(self, geo: ArmGeometry = SIM_GEOMETRY, width: int = 64, height: int = 64,
                 render: bool = True):
        self.geo = geo
        self.model = mujoco.MjModel.from_xml_string(build_mjcf(geo, width, height))
        self.data = mujoco.MjData(self.model)
        m = self.model
        self.k0 = m.jnt_stiffness.copy()
        self.d0 = m.dof_damping.copy()
        self.wrap0 = m.wrap_prm.copy()
        self.light0 = m.light_diffuse.copy()
        self.lightpos0 = m.light_pos.copy()
        self.campos0 = m.cam_pos.copy()
        self.ambient0 = m.vis.headlight.ambient.copy()
        self.skin = m.material('skin').id
        self.skin0 = m.mat_rgba[self.skin].copy()
        self.tendon_wraps = [
            np.arange(m.tendon_adr[t], m.tendon_adr[t] + m.tendon_num[t]) for t in range(2)]
        self.crack_geoms = np.array([m.geom(f'crack_{i}').id for i in range(SEGMENTS)])
        self.crack_size0 = m.geom_size[self.crack_geoms].copy()
        self.tip_site = m.site('tip').id
        self.qadr = m.jnt_qposadr[[m.joint(f'hinge_{i}').id for i in range(SEGMENTS)]]
        self.camera = m.camera('side').id
        self.renderer = mujoco.Renderer(m, height, width) if render else None
        self.width, self.height = width, height

    def close(self) -> None:
        """Release the renderer (needed under OSMesa)."""
        if self.renderer is not None:
            self.renderer.close()
            self.renderer = None

    def apply(self, physics: Physics) -> None:
        """Set stiffness, damping, rest angles, tendon moment arms and crack markers."""
        m = self.model
        m.jnt_stiffness[:] = self.k0 * physics.stiffness
        m.dof_damping[:] = self.d0 * physics.damping
        m.qpos_spring[self.qadr] = physics.rest_angle
        for t in range(2):
            m.wrap_prm[self.tendon_wraps[t]] = self.wrap0[self.tendon_wraps[t]] * physics.arms[t]
        size = self.crack_size0.copy()
        size[:, 2] *= np.clip(physics.crack, 0.0, 1.0)
        m.geom_size[self.crack_geoms] = size
        m.geom_rgba[self.crack_geoms, 3] = (physics.crack > 0.05).astype(np.float32)
        cover = FOULING_OPACITY * min(max(physics.fouling, 0.0), 1.0)
        m.mat_rgba[self.skin] = (self.skin0 if cover == 0 else
                                 (1.0 - cover) * self.skin0 + cover * FOULING_RGBA)

    def set_look(self, look: Look) -> None:
        """Set lighting and camera pose for the next renders."""
        m = self.model
        m.light_diffuse[:] = self.light0 * look.light * np.asarray(look.tint)
        m.light_pos[:] = self.lightpos0 + np.asarray(look.light_offset)
        m.cam_pos[self.camera] = self.campos0[self.camera] + np.asarray(look.camera_offset)
        m.vis.headlight.ambient[:] = self.ambient0 if look.ambient is None else look.ambient

    def reset(self) -> None:
        """Arm at rest (straight, or at its bulge rest angles), time 0."""
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[self.qadr] = self.model.qpos_spring[self.qadr]
        mujoco.mj_forward(self.model, self.data)

    def step(self) -> None:
        """Advance the physics by one time step."""
        mujoco.mj_step(self.model, self.data)

    def render(self) -> np.ndarray:
        """RGB frame [height, width, 3] uint8 of the current state."""
        self.renderer.update_scene(self.data, camera=self.camera)
        return self.renderer.render()

    def angles(self) -> np.ndarray:
        """Hinge angles [rad]; negative bends towards the post."""
        return self.data.qpos[self.qadr]

    def tip(self) -> np.ndarray:
        """Tip pose in the bending plane: x [m], z [m], pitch [rad] (0 = hanging)."""
        pos = self.data.site_xpos[self.tip_site]
        return np.array([pos[0], pos[2], -float(self.data.qpos[self.qadr].sum())])

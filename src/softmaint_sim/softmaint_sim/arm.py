"""
Reduced-order soft continuum arm in MuJoCo: a clamped chain of rigid segments on elastic joints.

The arm hangs from a clamp at the base. It is cut into N segments of length ds = L / N; the
joints sit at the segments' mid-points, arc length (i + 1/2) ds (the midpoint rule: a tip load
then bends the chain like the continuum to within 1 / (4 N^2), where joints at the segment
starts are 1.5 / N too compliant). Each joint is two bending hinges (about y: the x-z plane;
about x: the y-z plane) and a torsion hinge about the arm's axis, with the discretised rod
stiffnesses E I / ds and G J / ds (G = E / 3, incompressible elastomer). Each moving body
carries the rod's own mass, rho A times its length, set explicitly: a capsule's volume counts
its hemispherical end caps, which overlap the neighbours' and would double the arm's mass.
A planar arm (`spatial=False`) keeps only the x-z bending hinges.

Actuation is pneumatic: two chambers run along the arm. A chamber at gauge pressure p bends
every joint with the moment p * A_c * d_c (chamber cross-section times its centroid's offset
from the neutral axis) towards its own bending direction (`chamber_directions`: chamber 0 into
the post, +x; chamber 1 back and to the side, so the arm sweeps a V in space). The moment acts
through a fixed tendon per chamber whose coefficients are the moment per kPa on every joint;
its motor's control is the chamber pressure [kPa] that degradation.ChamberModel computes from
the commanded pressure. The arm sweeps against a horizontal cylindrical post; touch sensors on
box sites on the post side form the taxel strip; a fixed camera looks at the x-z plane.

Degradation is applied as physics between episodes (or between live steps) by editing the
compiled model in place: per-joint stiffness and damping, spring rest angles, the chambers'
moment per joint and the colour/size of crack markers (see degradation.py for what sets them).
"""
from dataclasses import dataclass, replace
import math
from typing import Optional, Tuple

import mujoco
import numpy as np
from softmaint_core.topics import ACTUATORS

SEGMENTS = 20
TAXELS = 32
FIELD_TAXELS = 8
BEND_SENSORS = 4
PRESSURE_UNITS = 'kPa'
POISSON = 0.5                  # elastomer: incompressible, so G = E / 3
# Colour a microbial film gives the skin (dark green-brown), blended in with its cover.
FOULING_RGBA = np.array([0.22, 0.30, 0.12, 1.0])
FOULING_OPACITY = 0.8          # a fully fouled skin shows this much of the film's colour


@dataclass(frozen=True)
class ArmGeometry:
    """Material, geometry and scene of one arm (the field domain shifts these)."""

    length: float = 0.40            # arm length [m]
    radius: float = 0.015           # capsule radius [m]
    segments: int = SEGMENTS        # rigid segments (joints) along the arm
    youngs_modulus: float = 1.5e6   # effective bending modulus of the elastomer body [Pa]
    density: float = 1100.0         # [kg/m^3]
    damping_time: float = 0.02      # Kelvin-Voigt retardation time: damping = stiffness * it [s]
    spatial: bool = True            # bending in both planes and torsion; False: x-z plane only
    chamber_area: float = 2.0e-4    # cross-section of one chamber [m^2]
    chamber_offset: float = 0.009   # its centroid's distance from the neutral axis [m]
    # direction [deg, from +x towards +y] in which each chamber bends the arm
    chamber_directions: Tuple[float, float] = (0.0, 150.0)
    pressure_max: float = 200.0     # supply pressure: the valves' command limit [kPa]
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
    armature: float = 2.0e-5        # joint armature [kg m^2]: keeps the 5 ms step stable

    @property
    def segment_length(self) -> float:
        """Length of one segment [m]."""
        return self.length / self.segments

    @property
    def bending_stiffness(self) -> float:
        """E*I of the rod cross-section [N m^2]."""
        return self.youngs_modulus * math.pi * self.radius ** 4 / 4.0

    @property
    def hinge_stiffness(self) -> float:
        """Nominal bending joint stiffness E*I/ds [N m/rad]."""
        return self.bending_stiffness / self.segment_length

    @property
    def torsion_stiffness(self) -> float:
        """Nominal torsion joint stiffness G*J/ds = E*I / ((1 + nu) ds) [N m/rad]."""
        return self.hinge_stiffness / (1.0 + POISSON)

    @property
    def mass_per_length(self) -> float:
        """Rod mass per length rho*A [kg/m]."""
        return self.density * math.pi * self.radius ** 2

    @property
    def mass(self) -> float:
        """Arm mass [kg]."""
        return self.mass_per_length * self.length

    @property
    def chamber_moment(self) -> float:
        """Bending moment of one chamber per kPa of gauge pressure [N m/kPa]."""
        return 1.0e3 * self.chamber_area * self.chamber_offset


SIM_GEOMETRY = ArmGeometry()
# The field robot: a stiffer-but-thicker cast of another elastomer, a bit longer, a different
# colour and scene, its chambers set a little differently, with another camera pose.
FIELD_GEOMETRY = replace(
    SIM_GEOMETRY, length=0.42, radius=0.016, youngs_modulus=1.3e6, density=1180.0,
    damping_time=0.025, chamber_area=2.2e-4, chamber_offset=0.0095,
    chamber_directions=(0.0, 155.0), post_x=0.085, post_depth=0.32, friction=0.8,
    arm_rgba=(0.80, 0.55, 0.25, 1.0), post_rgba=(0.62, 0.60, 0.55, 1.0),
    background_rgba=(0.28, 0.26, 0.24, 1.0), camera_pos=(0.06, -0.84, 0.41), camera_fovy=35.0)


def _fmt(values) -> str:
    return ' '.join(f'{v:.6g}' for v in values)


def _taxel_sites(geo: ArmGeometry):
    """Taxel box sites per body index (-1 = the clamped stub) as MJCF text."""
    ds, r = geo.segment_length, geo.radius
    pitch = geo.length / TAXELS
    sites = {}
    for j in range(TAXELS):
        lo, hi = j * pitch, (j + 1) * pitch
        if j == TAXELS - 1:
            hi += r        # the last taxel also covers the tip's end cap
        centre = (j + 0.5) * pitch
        body = min(int(centre / ds - 0.5), geo.segments - 1) if centre >= ds / 2 else -1
        start = 0.0 if body < 0 else (body + 0.5) * ds    # the body's frame along the arm
        sites.setdefault(body, []).append(
            f'<site name="taxel_{j}" type="box" pos="{r * 0.6:.6g} 0 '
            f'{-((lo + hi) / 2 - start):.6g}" size="{r * 0.7:.6g} {r * 1.1:.6g} '
            f'{(hi - lo) / 2:.6g}" rgba="0 0 0 0"/>')
    return {body: ''.join(text) for body, text in sites.items()}


def _joints(geo: ArmGeometry, i: int) -> str:
    bend = f'<joint name="bend_y_{i}" type="hinge" axis="0 1 0"/>'
    if not geo.spatial:
        return bend
    return (bend + f'<joint name="bend_x_{i}" type="hinge" axis="1 0 0"/>'
            f'<joint name="twist_{i}" type="hinge" axis="0 0 1" '
            f'stiffness="{geo.torsion_stiffness:.6g}" '
            f'damping="{geo.torsion_stiffness * geo.damping_time:.6g}"/>')


def _chamber_tendons(geo: ArmGeometry) -> str:
    """One fixed tendon per chamber: its moment per kPa on every bending joint."""
    tendons = []
    for c, direction in enumerate(geo.chamber_directions):
        # a negative y rotation moves the tip towards +x, a positive x rotation towards +y
        coef_y = -geo.chamber_moment * math.cos(math.radians(direction))
        coef_x = geo.chamber_moment * math.sin(math.radians(direction))
        terms = [f'<joint joint="bend_y_{i}" coef="{coef_y:.6g}"/>'
                 for i in range(geo.segments)]
        if geo.spatial:
            terms += [f'<joint joint="bend_x_{i}" coef="{coef_x:.6g}"/>'
                      for i in range(geo.segments)]
        tendons.append(f'<fixed name="{ACTUATORS[c]}">{"".join(terms)}</fixed>')
    return ''.join(tendons)


def build_mjcf(geo: ArmGeometry, width: int = 64, height: int = 64) -> str:
    """MJCF text of the arm, the post and the camera; offscreen buffer `width` x `height`."""
    ds, r = geo.segment_length, geo.radius
    taxels = _taxel_sites(geo)
    segment_mass = geo.mass_per_length * ds
    bodies = []
    for i in range(geo.segments):
        last = i == geo.segments - 1
        span = ds / 2 if last else ds           # the tip body reaches from its joint to the tip
        tip = f'<site name="tip" pos="0 0 {-span:.6g}" size="0.002"/>' if last else ''
        pos = f'0 0 {-ds / 2:.6g}' if i == 0 else f'0 0 {-ds:.6g}'
        bodies.append(
            f'<body name="seg_{i}" pos="{pos}">{_joints(geo, i)}'
            f'<geom name="capsule_{i}" type="capsule" fromto="0 0 0 0 0 {-span:.6g}" '
            f'size="{r:.6g}" material="skin" mass="{segment_mass * span / ds:.6g}"/>'
            f'<geom name="crack_{i}" type="box" pos="0 {-r * 0.97:.6g} {-span / 2:.6g}" '
            f'size="{r * 0.8:.6g} {r * 0.05:.6g} {ds * 0.45:.6g}" rgba="0.05 0.02 0.02 0" '
            f'contype="0" conaffinity="0" mass="0"/>'
            f'{taxels.get(i, "")}{tip}')
    chain = ''.join(bodies) + '</body>' * geo.segments
    actuators = ''.join(
        f'<motor name="{name}" tendon="{name}" gear="1" ctrllimited="true" '
        f'ctrlrange="0 {geo.pressure_max:.6g}"/>' for name in ACTUATORS)
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
    <joint stiffness="{geo.hinge_stiffness:.6g}"
           damping="{geo.hinge_stiffness * geo.damping_time:.6g}" armature="{geo.armature:.6g}"/>
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
    <geom name="stub" type="capsule" fromto="0 0 0 0 0 {-ds / 2:.6g}" size="{r:.6g}"
          material="skin" mass="0"/>
    {taxels.get(-1, "")}
    {chain}
    </body>
  </worldbody>
  <tendon>{_chamber_tendons(geo)}</tendon>
  <actuator>{actuators}</actuator>
  <sensor>{touch}</sensor>
</mujoco>
"""


@dataclass
class Physics:
    """Per-episode physical parameters applied to the compiled model (degradation as physics)."""

    stiffness: np.ndarray           # per-segment stiffness fraction of nominal [N]
    damping: np.ndarray             # per-segment damping factor (x nominal) [N]
    rest_bend: np.ndarray           # rest bend per joint against each chamber's direction [2, N]
    arms: np.ndarray                # chamber moment factor per chamber and joint [2, N]
    crack: np.ndarray               # visible crack size per segment [0, 1]
    fouling: float = 0.0            # microbial film cover of the skin [0, 1] (its colour)

    @classmethod
    def healthy(cls, segments: int = SEGMENTS) -> 'Physics':
        """Return the parameters of a new arm."""
        ones = np.ones(segments)
        return cls(ones.copy(), ones.copy(), np.zeros((2, segments)), np.ones((2, segments)),
                   np.zeros(segments))


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
        n = geo.segments
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
        self.crack_geoms = np.array([m.geom(f'crack_{i}').id for i in range(n)])
        self.crack_size0 = m.geom_size[self.crack_geoms].copy()
        self.tip_site = m.site('tip').id
        # segment of every joint (bending y, bending x and twist joints of a segment share it)
        self.joint_segment = np.array([int(m.joint(j).name.rsplit('_', 1)[1])
                                       for j in range(m.njnt)])
        self.qadr = m.jnt_qposadr[[m.joint(f'bend_y_{i}').id for i in range(n)]]
        self.xadr = (m.jnt_qposadr[[m.joint(f'bend_x_{i}').id for i in range(n)]]
                     if geo.spatial else np.zeros(0, int))
        angles = np.radians(geo.chamber_directions)
        self.directions = np.stack([np.cos(angles), np.sin(angles)], axis=1)   # [2, (x, y)]
        self.camera = m.camera('side').id
        self.renderer = mujoco.Renderer(m, height, width) if render else None
        self.width, self.height = width, height

    def close(self) -> None:
        """Release the renderer (needed under OSMesa)."""
        if self.renderer is not None:
            self.renderer.close()
            self.renderer = None

    def apply(self, physics: Physics) -> None:
        """Set stiffness, damping, rest angles, chamber moments and crack markers."""
        m = self.model
        m.jnt_stiffness[:] = self.k0 * physics.stiffness[self.joint_segment]
        m.dof_damping[:] = self.d0 * physics.damping[self.joint_segment]
        # a rest bend against chamber c's direction (x, y): tip towards -(x, y)
        rest_x, rest_y = -(physics.rest_bend.T @ self.directions).T
        m.qpos_spring[self.qadr] = -rest_x          # negative y rotation moves the tip to +x
        if self.geo.spatial:
            m.qpos_spring[self.xadr] = rest_y       # positive x rotation moves the tip to +y
        planes = 2 if self.geo.spatial else 1
        for t in range(2):
            m.wrap_prm[self.tendon_wraps[t]] = (self.wrap0[self.tendon_wraps[t]]
                                                * np.tile(physics.arms[t], planes))
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
        self.data.qpos[:] = self.model.qpos_spring
        mujoco.mj_forward(self.model, self.data)

    def step(self) -> None:
        """Advance the physics by one time step."""
        mujoco.mj_step(self.model, self.data)

    def render(self) -> np.ndarray:
        """RGB frame [height, width, 3] uint8 of the current state."""
        self.renderer.update_scene(self.data, camera=self.camera)
        return self.renderer.render()

    def angles(self) -> np.ndarray:
        """Bending angles in the x-z plane [rad]; negative bends towards the post."""
        return self.data.qpos[self.qadr]

    def bending(self) -> np.ndarray:
        """Bending angles of both planes [2N] (x-z, then y-z; zeros for a planar arm)."""
        lateral = self.data.qpos[self.xadr] if self.geo.spatial else np.zeros(len(self.qadr))
        return np.concatenate([self.data.qpos[self.qadr], lateral])

    def tip_position(self) -> np.ndarray:
        """Tip position x, y, z [m]."""
        return self.data.site_xpos[self.tip_site].copy()

    def tip(self) -> np.ndarray:
        """Tip pose in the x-z plane: x [m], z [m], pitch [rad] (0 = hanging)."""
        pos = self.data.site_xpos[self.tip_site]
        return np.array([pos[0], pos[2], -float(self.data.qpos[self.qadr].sum())])

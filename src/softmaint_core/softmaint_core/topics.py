"""
Topic, service and action names of the suite, shared by nodes, the simulator and bag tools.

Names are relative so that a namespace (one robot of several) or a remap moves them all.
"""
# Field sensors (published by the robot or the sim robot, read by ingestion).
CAMERA = 'camera/image_raw'                 # sensor_msgs/Image
TACTILE = 'tactile'                         # softmaint_interfaces/TactileArray
JOINT_STATES = 'joint_states'               # sensor_msgs/JointState: bend sensors [rad]
ACTUATION = 'actuation'                     # softmaint_interfaces/ActuatorState
ENVIRONMENT = 'environment'                 # softmaint_interfaces/EnvironmentReading
GROUND_TRUTH = 'softmaint/ground_truth'     # softmaint_interfaces/GroundTruth (sim only)
# Sensor source -> (message type, topic): what ingestion subscribes, bags hold, loads publish.
SENSORS = {
    'camera': ('sensor_msgs/msg/Image', CAMERA),
    'tactile': ('softmaint_interfaces/msg/TactileArray', TACTILE),
    'joint_states': ('sensor_msgs/msg/JointState', JOINT_STATES),
    'actuation': ('softmaint_interfaces/msg/ActuatorState', ACTUATION),
    'environment': ('softmaint_interfaces/msg/EnvironmentReading', ENVIRONMENT),
}

# The suite's own streams.
WINDOW = 'softmaint/window'                 # softmaint_interfaces/SensorWindow
PREDICTION = 'softmaint/prediction'         # softmaint_interfaces/MaintenancePrediction
DECISION = 'softmaint/decision'             # softmaint_interfaces/MaintenanceDecision (latched)
WORKLOAD_LIMIT = 'softmaint/workload_limit'  # std_msgs/Float32, fraction of nominal [0, 1]
DIAGNOSTICS = '/diagnostics'                # diagnostic_msgs/DiagnosticArray

# Services and actions.
RELOAD_MODEL = 'softmaint/reload_model'     # softmaint_interfaces/srv/ReloadModel
ACKNOWLEDGE = 'softmaint/acknowledge'       # softmaint_interfaces/srv/AcknowledgeAssistance
LIST_REQUESTS = 'softmaint/list_requests'   # softmaint_interfaces/srv/ListAssistanceRequests
INSPECT = 'softmaint/inspect'               # softmaint_interfaces/action/Inspect
EMERGENCY_STOP = 'emergency_stop'           # std_srvs/Trigger, served by the robot

# Joint names of the field robot's bend sensors and actuators, in proprio order.
BEND_JOINTS = tuple(f'bend_{i}' for i in range(4))
ACTUATORS = ('chamber_0', 'chamber_1')   # pneumatic chambers, pressures in kPa
